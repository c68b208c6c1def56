/**
 * Debian's `promtool` (package `prometheus`), run by the tests (not a test file): `check metrics`
 * lints a text exposition against Prometheus naming conventions, `check rules` parses PromQL.
 * `npm test` installs it as root (scripts/setup.mjs, ensurePromtool).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const PROMTOOL = '/usr/bin/promtool';

/** What one promtool run said: its exit code and everything it printed (stdout and stderr). */
export interface PromtoolResult {
  readonly code: number | null;
  readonly output: string;
}

/** Throws, saying how to install it, unless promtool is installed. */
export function requirePromtool(): void {
  if (!existsSync(PROMTOOL))
    throw new Error(
      `promtool is not installed at ${PROMTOOL}; these tests need it: apt-get install prometheus ` +
        '(Debian/Ubuntu, as root; `npm test` does this itself when run as root)',
    );
}

function promtool(args: readonly string[], stdin: string): Promise<PromtoolResult> {
  requirePromtool();
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output: output.trim() }));
    child.stdin.end(stdin);
  });
}

/**
 * `promtool check metrics` on a text exposition. Clean is exit code 0 and no output; lint
 * problems are exit code 3 with one line per problem, a malformed exposition exit code 1.
 */
export function checkMetrics(exposition: string): Promise<PromtoolResult> {
  return promtool(['check', 'metrics'], exposition);
}

/** `promtool check rules` on `exprs` as recording rules (so each is parsed as PromQL). */
export async function checkPromql(exprs: readonly string[]): Promise<PromtoolResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'discluster-promql-'));
  try {
    const file = path.join(dir, 'rules.json');
    // YAML is a superset of JSON: a JSON rules file needs no YAML writer.
    const rules = exprs.map((expr, index) => ({ record: `dashboard:expr:${index}`, expr }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    return await promtool(['check', 'rules', file], '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
