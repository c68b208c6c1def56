'use strict';
// One stand-in machine's CONTROL in `npm run demo`. It runs as a pm2 app of the demo's own pm2 home
// (so `pm2 monit` on that home shows it with its metrics), but a real CONTROL runs its bot clusters
// under its machine's pm2 daemon: here, the daemon of DEMO_HOST_PM2_HOME (.demo/hosts/<id>). pm2
// sets PM2_HOME to the demo home in every app's environment, and CONTROL's pm2 client reads
// PM2_HOME when it is loaded, so point it at the machine's home before loading CONTROL.
const path = require('node:path');

const home = process.env.DEMO_HOST_PM2_HOME;
if (!home || !path.isAbsolute(home)) {
  process.stderr.write(
    'host-control: DEMO_HOST_PM2_HOME must be the absolute path of this machine’s pm2 home\n',
  );
  process.exit(1);
}
process.env.PM2_HOME = home;
// Loaded, not run as the main module: start CONTROL explicitly.
require(path.join(__dirname, '..', '..', 'pm2-module-control', 'dist', 'main.js')).runControlProcess(
  process.env,
);
