#!/usr/bin/env node
/** Foreground `discluster-control`: the same code as the module, configured by `DISCLUSTER_*`. */
import { runControlProcess } from './run.js';

runControlProcess(process.env);
