// The private-pm2 helpers live in discluster-testing (shared with the integration tests).
export {
  killMachine,
  killPm2,
  makePm2Home,
  pm2Cli,
  pm2Env,
  pm2List,
  pm2Trigger,
  processesMentioning,
  teardownPm2,
} from 'discluster-testing';
export type { Pm2Process } from 'discluster-testing';
