import type { NatsSettings } from 'discluster-protocol';
import { describe, expect, it } from 'vitest';
import {
  connectNatsWithRetry,
  describeNatsConnectError,
  isLoopbackHost,
  natsRequiresTls,
  natsRetryDelayMs,
  plaintextNatsUrls,
  plaintextNatsWarning,
  redactNatsUrl,
  type NatsConnectLogger,
} from '../src/natsConnect';

const settings = (urls: string[], extra: Partial<NatsSettings> = {}): NatsSettings => ({
  nats_url: urls,
  ...extra,
});

describe('plaintext NATS decision', () => {
  it('treats localhost, 127.0.0.0/8 and ::1 as loopback, nothing else', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      'nats.localhost',
      '127.0.0.1',
      '127.8.9.10',
      '::1',
      '[::1]',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of [
      '10.0.0.5',
      '192.168.1.2',
      'nats.example.com',
      '0.0.0.0',
      '::',
      '128.0.0.1',
      'localhost.com',
    ])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('warns for non-loopback nats:// and ws:// URLs only, naming each', () => {
    expect(plaintextNatsUrls(settings(['nats://127.0.0.1:4222']))).toEqual([]);
    expect(plaintextNatsUrls(settings(['nats://localhost:4222', 'nats://[::1]:4222']))).toEqual([]);
    expect(
      plaintextNatsUrls(
        settings(['nats://127.0.0.1:4222', 'nats://10.0.0.7:4222', 'ws://nats.example.com:80']),
      ),
    ).toEqual(['nats://10.0.0.7:4222', 'ws://nats.example.com:80']);
    const warning = plaintextNatsWarning(settings(['nats://nats.internal:4222']));
    expect(warning).toContain('nats://nats.internal:4222');
    expect(warning).toContain('PLAINTEXT');
    expect(plaintextNatsWarning(settings(['nats://127.0.0.1:4222']))).toBeNull();
  });

  it('does not warn when TLS is required: a tls:// or wss:// URL, or any nats_tls_* setting', () => {
    expect(plaintextNatsUrls(settings(['tls://nats.example.com:4222']))).toEqual([]);
    expect(plaintextNatsUrls(settings(['wss://nats.example.com:443']))).toEqual([]);
    for (const key of ['nats_tls_ca', 'nats_tls_cert', 'nats_tls_key'] as const) {
      const s = settings(['nats://10.0.0.7:4222'], { [key]: '/etc/nats/file.pem' });
      expect(plaintextNatsUrls(s), key).toEqual([]);
      expect(natsRequiresTls(s), key).toBe(true);
    }
    // One tls:// URL makes the client require TLS of every server in the list.
    expect(plaintextNatsUrls(settings(['tls://a:4222', 'nats://b:4222']))).toEqual([]);
    expect(natsRequiresTls(settings(['nats://10.0.0.7:4222']))).toBe(false);
  });

  it('never repeats a password or token written into the URL', () => {
    expect(redactNatsUrl('nats://u:hunter2@10.0.0.7:4222')).toBe('nats://u:***@10.0.0.7:4222');
    expect(redactNatsUrl('nats://s3cret-token@10.0.0.7:4222')).toBe('nats://***@10.0.0.7:4222');
    expect(redactNatsUrl('tls://10.0.0.7:4222')).toBe('tls://10.0.0.7:4222');
    expect(plaintextNatsWarning(settings(['nats://u:hunter2@10.0.0.7:4222']))).not.toContain('hunter2');
    const refused = describeNatsConnectError(
      { name: 'AuthorizationError', message: 'Authorization Violation' },
      settings(['nats://u:hunter2@10.0.0.7:4222']),
    );
    expect(refused.message).not.toContain('hunter2');
  });

  it('warns about a URL it cannot parse rather than stay silent', () => {
    expect(plaintextNatsUrls(settings(['nats://exa mple:4222']))).toEqual(['nats://exa mple:4222']);
  });
});

describe('connection errors name the setting to fix', () => {
  const auth = { name: 'AuthorizationError', message: 'Authorization Violation' };

  it('an authorization violation names the credentials in use', () => {
    expect(
      describeNatsConnectError(auth, settings(['nats://h:1'], { nats_user: 'u', nats_pass: 'p' })),
    ).toMatchObject({ kind: 'settings', settings: ['nats_user', 'nats_pass'] });
    expect(describeNatsConnectError(auth, settings(['nats://h:1'], { nats_token: 't' }))).toMatchObject({
      settings: ['nats_token'],
    });
    const creds = describeNatsConnectError(auth, settings(['nats://h:1'], { nats_creds: '/x/u.creds' }));
    expect(creds).toMatchObject({ settings: ['nats_creds'] });
    expect(creds.message).toContain('/x/u.creds');
    expect(describeNatsConnectError(auth, settings(['nats://h:1'])).message).toMatch(
      /requires authentication/,
    );
  });

  it('never puts a password or token in the message', () => {
    const text = describeNatsConnectError(
      auth,
      settings(['nats://h:1'], { nats_user: 'u', nats_pass: 'hunter2', nats_token: 'tok-secret' }),
    ).message;
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('tok-secret');
  });

  it('an untrusted server certificate names nats_tls_ca', () => {
    const error = Object.assign(new Error('unable to verify the first certificate'), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    const problem = describeNatsConnectError(error, settings(['tls://h:1'], { nats_tls_ca: '/ca.pem' }));
    expect(problem).toMatchObject({ kind: 'settings', settings: ['nats_tls_ca'] });
    expect(problem.message).toContain('/ca.pem');
    expect(describeNatsConnectError(error, settings(['tls://h:1'])).message).toMatch(/set nats_tls_ca/);
  });

  it('a timeout against a server that wants client certificates names nats_tls_cert', () => {
    const timeout = { name: 'TimeoutError', message: 'timeout' };
    const withCert = settings(['tls://h:1'], { nats_tls_cert: '/c.pem', nats_tls_key: '/c.key' });
    expect(describeNatsConnectError(timeout, withCert, { tls_verify: true })).toMatchObject({
      kind: 'settings',
      settings: ['nats_tls_cert', 'nats_tls_key'],
    });
    expect(describeNatsConnectError(timeout, settings(['tls://h:1']), { tls_verify: true }).message).toMatch(
      /requires a client certificate/,
    );
    // Without that hint a timeout is just an unreachable server.
    expect(describeNatsConnectError(timeout, withCert).kind).toBe('unreachable');
  });

  it('explains missing files, bad PEM, a key that does not match, bad creds and a server without TLS', () => {
    const files = settings(['tls://h:1'], { nats_tls_ca: '/etc/ca.pem', nats_creds: '/etc/u.creds' });
    expect(
      describeNatsConnectError(
        Object.assign(new Error("ENOENT: no such file or directory, open '/etc/u.creds'"), {
          code: 'ENOENT',
        }),
        files,
      ),
    ).toMatchObject({ settings: ['nats_creds'] });
    expect(
      describeNatsConnectError({ name: 'ConnectionError', message: "/etc/ca.pem doesn't exist" }, files),
    ).toMatchObject({ settings: ['nats_tls_ca'] });
    expect(
      describeNatsConnectError(
        {
          name: 'ConnectionError',
          message: 'key values mismatch',
          cause: { code: 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' },
        },
        settings(['tls://h:1'], { nats_tls_cert: '/c.pem', nats_tls_key: '/k.pem' }),
      ),
    ).toMatchObject({ settings: ['nats_tls_cert', 'nats_tls_key'] });
    expect(describeNatsConnectError(new Error('unable to parse credentials'), files).settings).toEqual([
      'nats_creds',
    ]);
    expect(
      describeNatsConnectError({ name: 'ConnectionError', message: "server does not support 'tls'" }, files)
        .settings,
    ).toContain('nats_url');
  });

  it('a refused connection is "unreachable", not a settings error', () => {
    const problem = describeNatsConnectError(
      { name: 'ConnectionError', message: 'connection refused', cause: { code: 'ECONNREFUSED' } },
      settings(['nats://h:1']),
    );
    expect(problem.kind).toBe('unreachable');
    expect(problem.message).toContain('nats://h:1');
  });
});

describe('connectNatsWithRetry', () => {
  function recorder() {
    const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
    const at =
      (level: string) =>
      (fields: Record<string, unknown>, message: string): void =>
        void lines.push({ level, fields, message });
    const logger: NatsConnectLogger = {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
    };
    return { lines, logger };
  }

  it('retries with a capped doubling delay, logs the refusal once as an error, then at debug', async () => {
    const { lines, logger } = recorder();
    const sleeps: number[] = [];
    let clock = 0;
    let attempts = 0;
    const connection = await connectNatsWithRetry({
      settings: settings(['nats://h:1'], { nats_user: 'u', nats_pass: 'p' }),
      logger,
      maxDelayMs: 2_000,
      connect: async () => {
        attempts++;
        if (attempts < 6) throw { name: 'AuthorizationError', message: 'Authorization Violation' };
        return 'connected';
      },
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      now: () => clock,
      probe: async () => null,
    });
    expect(connection).toBe('connected');
    expect(sleeps).toEqual([500, 1000, 2000, 2000, 2000]);
    expect(lines.map((line) => line.level)).toEqual(['error', 'debug', 'debug', 'debug', 'debug']);
    expect(lines[0]!.fields).toMatchObject({ attempt: 1, settings: ['nats_user', 'nats_pass'] });
    expect(lines.map((line) => line.fields['attempt'])).toEqual([1, 2, 3, 4, 5]);
  });

  it('logs the same problem again after repeatLogMs, and a changed problem at once', async () => {
    const { lines, logger } = recorder();
    let clock = 0;
    const errors = [
      { name: 'AuthorizationError', message: 'Authorization Violation' },
      { name: 'AuthorizationError', message: 'Authorization Violation' },
      { name: 'AuthorizationError', message: 'Authorization Violation' },
      { name: 'ConnectionError', message: 'connection refused' },
    ];
    await connectNatsWithRetry({
      settings: settings(['nats://h:1'], { nats_token: 't' }),
      logger,
      maxDelayMs: 1_000,
      repeatLogMs: 1_500,
      connect: async () => {
        const next = errors.shift();
        if (next) throw next;
        return 'ok';
      },
      sleep: async (ms) => void (clock += ms),
      now: () => clock,
      probe: async () => null,
    });
    // t=0 error; t=500 repeat (debug); t=1500 repeat after 1500 ms (error again); then unreachable (info).
    expect(lines.map((line) => line.level)).toEqual(['error', 'debug', 'error', 'info']);
  });

  it('asks the server what it wants when a failure is not self-explaining', async () => {
    const { lines, logger } = recorder();
    let attempts = 0;
    const probed: string[] = [];
    await connectNatsWithRetry({
      settings: settings(['tls://h:1'], { nats_tls_cert: '/c.pem', nats_tls_key: '/c.key' }),
      logger,
      maxDelayMs: 1_000,
      connect: async () => {
        if (attempts++ === 0) throw { name: 'TimeoutError', message: 'timeout' };
        return 'ok';
      },
      sleep: async () => undefined,
      probe: async (url) => {
        probed.push(url);
        return { tls_required: true, tls_verify: true };
      },
    });
    expect(probed).toEqual(['tls://h:1']);
    expect(lines[0]).toMatchObject({
      level: 'error',
      fields: { settings: ['nats_tls_cert', 'nats_tls_key'] },
    });
  });

  it('delays are 500 ms doubling up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((attempt) => natsRetryDelayMs(attempt, 5_000))).toEqual([
      500, 1000, 2000, 4000, 5000, 5000,
    ]);
    expect(natsRetryDelayMs(10_000, 30_000)).toBe(30_000);
  });
});
