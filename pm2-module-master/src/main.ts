/**
 * pm2 module entry (`pm2 install discluster-master`). Settings come from
 * `process.env['discluster-master']` (what `pm2 set discluster-master:<key>` writes). A crash
 * exits; SIGINT/SIGTERM stop cleanly, releasing the leadership so a standby MASTER takes over at once.
 */
import { runModuleProcess } from 'discluster-runtime/module';
import { startMaster } from './startMaster.js';

runModuleProcess('discluster-master', () => startMaster(process.env));
