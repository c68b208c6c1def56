import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFreePort, spawnNode, type SpawnedProcess } from 'discluster-testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logLine } from './support/securedFleet';

/**
 * Issue 8 §2, plaintext warning, end to end: the real MASTER and CONTROL bins log a loud pino
 * `warn` naming the URL and saying PLAINTEXT when `nats_url` points at a non-loopback host without
 * TLS, and stay quiet for loopback or TLS. The decision itself is unit-tested in
 * protocol/test/natsSecurity.test.ts. Nothing here needs a server: the warning comes before the
 * first connect attempt (192.0.2.0/24 is TEST-NET-1, never routed).
 */

const ROOT = path.resolve(__dirname, '..');
const BINS = {
  MASTER: path.join(ROOT, 'pm2-module-master', 'dist', 'main.js'),
  CONTROL: path.join(ROOT, 'pm2-module-control', 'dist', 'main.js'),
} as const;

// CONTROL never reaches pm2 here (it waits for NATS first), but keep it away from ~/.pm2 anyway.
const pm2Home = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-plaintext-'));
const started: SpawnedProcess[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((child) => child.stop()));
});

afterAll(() => {
  fs.rmSync(pm2Home, { recursive: true, force: true });
});

function start(kind: keyof typeof BINS, env: Record<string, string>): SpawnedProcess {
  const child = spawnNode(BINS[kind], [], {
    env: {
      PM2_HOME: pm2Home,
      DISCLUSTER_BOT: 'plaintext',
      DISCLUSTER_LOG_LEVEL: 'debug',
      ...(kind === 'MASTER'
        ? { DISCLUSTER_TOKEN: 'never-used-token' }
        : { DISCLUSTER_HOST_ID: 'alpha', DISCLUSTER_RETRY_MS: '500' }),
      ...env,
    },
  });
  started.push(child);
  return child;
}

const warnings = (child: SpawnedProcess) =>
  child.lines
    .map(logLine)
    .filter((line) => line !== null && line['plaintext'] === true && line['level'] === 40);

/** The first connect attempt's log line: everything logged before it is all the start logs. */
const firstAttempt = (child: SpawnedProcess) =>
  child.waitForLine((line) => logLine(line)?.['attempt'] === 1, 30_000);

describe('plaintext NATS warning', () => {
  for (const kind of ['MASTER', 'CONTROL'] as const) {
    it(`${kind} warns loudly about a non-loopback nats:// URL, naming it`, async () => {
      const child = start(kind, { DISCLUSTER_NATS_URL: 'nats://127.0.0.1:4222,nats://192.0.2.10:4222' });
      const line = logLine(await child.waitForLine((text) => logLine(text)?.['plaintext'] === true, 30_000))!;
      expect(line['level']).toBe(40);
      expect(String(line['msg'])).toContain('nats://192.0.2.10:4222');
      expect(String(line['msg'])).toContain('PLAINTEXT');
      // The loopback URL is not blamed.
      expect(String(line['msg'])).not.toContain('127.0.0.1');
    });

    it(`${kind} does not warn for loopback, a tls:// URL, or nats_tls_ca`, async () => {
      const port = await getFreePort();
      const quiet = [
        start(kind, { DISCLUSTER_NATS_URL: `nats://127.0.0.1:${port},nats://localhost:${port}` }),
        start(kind, { DISCLUSTER_NATS_URL: 'tls://192.0.2.10:4222' }),
        start(kind, {
          DISCLUSTER_NATS_URL: 'nats://192.0.2.10:4222',
          DISCLUSTER_NATS_TLS_CA: path.join(pm2Home, 'ca.pem'),
        }),
      ];
      for (const child of quiet) {
        await firstAttempt(child);
        expect(warnings(child)).toEqual([]);
      }
    });
  }
});
