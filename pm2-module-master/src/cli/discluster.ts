#!/usr/bin/env node
/** `discluster`: the operator CLI (docs/architecture.md "Contracts"). */
import { runCli } from './runCli.js';

runCli(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`discluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
