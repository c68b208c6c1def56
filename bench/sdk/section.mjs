// One section of bench:sdk (dispatch.mjs, ipc.mjs) from start to results: the build checked, the
// machine's facts, the measuring body, then sdk.json and sdk.md written (report.mjs). Every process
// the section started is stopped by pid however it ends (common.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log } from '../lib/log.mjs';
import { machineFacts, sdkBuildFingerprint } from '../lib/machineFacts.mjs';
import { NICE, requireBuilt, runMain, stopEverything } from './common.mjs';
import { writeSection } from './report.mjs';

/** Where results go: `--out`, else a temp dir for `--quick`, else null (bench/results). */
export function sectionOutDir(out, quick) {
  if (out) return path.resolve(out);
  return quick ? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-sdk-bench-')) : null;
}

/**
 * Runs section `name` as the bench's main: `body(machine)` measures and resolves with
 * `{ startedAt, summary, runs, extra }`; the section is written with `config` as it is at the end.
 */
export function runSdkSection(name, { config, quick, outDir }, body) {
  runMain(async () => {
    requireBuilt();
    const machine = machineFacts(NICE);
    try {
      const { startedAt, summary, runs, extra } = await body(machine);
      const section = {
        startedAt,
        finishedAt: new Date().toISOString(),
        machine,
        // The SDK build again at the end: equal to machine.builtAt unless someone rebuilt it mid-run.
        sdkBuildAtEnd: sdkBuildFingerprint(),
        config: { ...config, quick },
        summary,
        ...extra,
        runs,
      };
      const written = writeSection(name, section, outDir);
      log(`wrote ${written.join(', ')}`);
    } finally {
      await stopEverything();
    }
  });
}
