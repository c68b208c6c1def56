import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** This package's version, read at run time (package.json is outside the compiled rootDir). */
export function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    const version = (pkg as { version?: unknown }).version;
    return typeof version === 'string' ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Facts MASTER plans with: cores and the 15-minute load average (seed 004), and memory. `cores`
 * (the setting) replaces the count Node sees, for containers limited to fewer CPUs.
 */
export function hostFacts(cores?: number) {
  return {
    cores: cores ?? Math.max(1, os.availableParallelism()),
    load15: Math.max(0, os.loadavg()[2] ?? 0),
    memory: { total: os.totalmem(), free: os.freemem() },
  };
}
