/**
 * pm2 module entry (`pm2 install discluster-control`). Settings come from
 * `process.env['discluster-control']` (what `pm2 set discluster-control:<key>` writes), not from
 * @pm2/io's `initModule`, which reads pm2's own package.json when run under pm2.
 */
import { runControlProcess } from './run.js';

runControlProcess(process.env);
