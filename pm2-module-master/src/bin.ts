#!/usr/bin/env node
/** Foreground `discluster-master`: the same code as the module, configured by `DISCLUSTER_*`. */
import { runModuleProcess } from 'discluster-runtime/module';
import { startMaster } from './startMaster.js';

runModuleProcess('discluster-master', () => startMaster(process.env));
