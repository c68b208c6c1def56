#!/usr/bin/env node
/** Foreground `discluster-master`: the same code as the module, configured by `DISCLUSTER_*`. */
import { runMasterProcess } from './run.js';

runMasterProcess(process.env);
