// One section of `npm run bench` (bench/peers/<name>.mjs) as a process of its own: flags, machine
// facts, a CPU sampler, and on the way out (done, failed or SIGINT) every process it started is
// stopped by pid and `<out>/<name>.json` is written. bench/peers/run.mjs runs the sections in order
// and renders the results.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NICE, requireBuilt, stopEverything } from '../sdk/common.mjs';
import { parseBenchFlags } from './flags.mjs';
import { log } from './log.mjs';
import { machineFacts, sdkBuildFingerprint } from './machineFacts.mjs';
import { startCpuSampler } from './cpu.mjs';

/**
 * Runs `body({ quick, flags, sampler, record })` as section `name`. `record` is the object written
 * as JSON (body fills it); a thrown error is recorded as `error`, with what was measured until then.
 */
export async function runSection(name, options, body) {
  const flags = parseBenchFlags(options);
  const out = path.resolve(flags.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-bench-')));
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, `${name}.json`);
  const record = { name, quick: flags.quick, startedAt: new Date().toISOString() };
  const write = () => {
    record.finishedAt = new Date().toISOString();
    fs.writeFileSync(file, `${JSON.stringify(record, null, 1)}\n`);
  };
  // SIGINT: bench/sdk/common.mjs stops every process; write what was measured so far first.
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.prependListener(signal, () => {
      record.error = record.error ?? `interrupted (${signal})`;
      write();
    });
  const sampler = startCpuSampler(1000);
  let code = 0;
  try {
    requireBuilt();
    record.machine = machineFacts(NICE);
    log(`${name}: ${flags.quick ? 'quick' : 'full'} run, results to ${file}`);
    await body({ quick: flags.quick, flags, sampler, record, log });
  } catch (error) {
    record.error = error?.stack ?? String(error);
    log(`${name} FAILED: ${record.error}`);
    code = 1;
  } finally {
    sampler.stop();
    await stopEverything();
    record.sdkBuildAtEnd = sdkBuildFingerprint().combined;
    write();
  }
  process.exit(code);
}
