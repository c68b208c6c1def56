// One section of bench:sdk (dispatch.mjs, ipc.mjs) from start to results: its flags, the build
// checked, the machine's facts, the measuring body, then sdk.json and sdk.md written (report.mjs).
// Every process the section started is stopped by pid however it ends (common.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseBenchFlags } from '../lib/flags.mjs';
import { log } from '../lib/log.mjs';
import { machineFacts, sdkBuildFingerprint } from '../lib/machineFacts.mjs';
import { NICE, requireBuilt, runMain, setProfileDir, stopEverything } from './common.mjs';
import { writeSection } from './report.mjs';

/** Where results go: `--out`, else a temp dir for `--quick`, else null (bench/results). */
function sectionOutDir(out, quick) {
  if (out) return path.resolve(out);
  return quick ? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-sdk-bench-')) : null;
}

/**
 * A section's flags: --quick, --out DIR, --cpu-prof DIR (diagnostics: V8 CPU profiles of every
 * child into DIR, summarised by profile-summary.mjs) and the section's own `options`. Returns them
 * with `quick` and where the results go ({@link sectionOutDir}).
 */
export function parseSectionFlags(options) {
  const flags = parseBenchFlags({ 'cpu-prof': { type: 'string' }, ...options });
  setProfileDir(flags['cpu-prof']);
  return { flags, quick: flags.quick, outDir: sectionOutDir(flags.out, flags.quick) };
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
