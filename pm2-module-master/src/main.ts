/**
 * pm2 module entry (`pm2 install discluster-master`). Settings come from
 * `process.env['discluster-master']` (what `pm2 set discluster-master:<key>` writes).
 */
import { runMasterProcess } from './run.js';

runMasterProcess(process.env);
