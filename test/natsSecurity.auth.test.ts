import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import type { Fleet } from './support/fleet';
import { makeTempDir, makeTestOperator, type TempDir, type TestOperator } from './support/natsSecurity';
import { expectFleetServes, expectRefusedAndRetrying } from './support/securedFleet';

/**
 * Issue 8 §2, authentication: a real nats-server that requires user/password, a token, or a
 * `.creds` file (operator mode: operator, account and user JWTs signed with nkeys, resolved from
 * memory). Per mechanism, a whole fleet (foreground MASTER, CONTROL with its own pm2 daemon, the
 * bot fixture as cluster) serves every shard through discord-sim with the right settings; with the
 * wrong ones MASTER and CONTROL each log an error naming the setting, keep retrying, and nothing is
 * planned or started. TLS is in natsSecurity.tls.test.ts.
 */

let fleet: Fleet | undefined;
let temp: TempDir;
let operator: TestOperator;

beforeAll(async () => {
  temp = await makeTempDir('discluster-nats-auth-');
  operator = makeTestOperator(temp);
});

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
}, 120_000);

afterAll(async () => {
  await temp?.remove();
});

const PASSWORD = 'correct-horse-7c1d';
const TOKEN = 's3cret-nats-token-9a2b';

describe('NATS user/password', () => {
  const server = { config: `authorization: { user: "discluster", password: "${PASSWORD}" }\n` };

  it('a fleet with nats_user/nats_pass serves every shard', { timeout: 150_000 }, async () => {
    fleet = await expectFleetServes({
      bot: 'userpass',
      server,
      good: { DISCLUSTER_NATS_USER: 'discluster', DISCLUSTER_NATS_PASS: PASSWORD },
    });
  });

  it(
    'a wrong password is an error naming nats_user/nats_pass; both keep retrying; nothing is planned',
    {
      timeout: 150_000,
    },
    async () => {
      fleet = await expectRefusedAndRetrying({
        bot: 'userpass',
        server,
        good: { DISCLUSTER_NATS_USER: 'discluster', DISCLUSTER_NATS_PASS: PASSWORD },
        bad: { DISCLUSTER_NATS_USER: 'discluster', DISCLUSTER_NATS_PASS: 'wrong-password' },
        names: ['nats_user', 'nats_pass'],
        serverRefusal: /authentication error/,
      });
    },
  );
});

describe('NATS token', () => {
  const server = { config: `authorization: { token: "${TOKEN}" }\n` };

  it('a fleet with nats_token serves every shard', { timeout: 150_000 }, async () => {
    fleet = await expectFleetServes({ bot: 'token', server, good: { DISCLUSTER_NATS_TOKEN: TOKEN } });
  });

  it(
    'a wrong token is an error naming nats_token; both keep retrying; nothing is planned',
    {
      timeout: 150_000,
    },
    async () => {
      fleet = await expectRefusedAndRetrying({
        bot: 'token',
        server,
        good: { DISCLUSTER_NATS_TOKEN: TOKEN },
        bad: { DISCLUSTER_NATS_TOKEN: 'not-the-token' },
        names: ['nats_token'],
        serverRefusal: /authentication error/,
      });
    },
  );
});

describe('NATS .creds (operator mode, JWT + nkey)', () => {
  it('a fleet with nats_creds serves every shard', { timeout: 150_000 }, async () => {
    const creds = await operator.userCreds('fleet');
    fleet = await expectFleetServes({
      bot: 'creds',
      server: { config: operator.serverConfig },
      good: { DISCLUSTER_NATS_CREDS: creds },
    });
  });

  it(
    'creds of an account the server does not trust are an error naming nats_creds; both keep retrying',
    {
      timeout: 150_000,
    },
    async () => {
      fleet = await expectRefusedAndRetrying({
        bot: 'creds',
        server: { config: operator.serverConfig },
        good: { DISCLUSTER_NATS_CREDS: await operator.userCreds('operator-cli') },
        bad: { DISCLUSTER_NATS_CREDS: await operator.untrustedCreds('stranger') },
        names: ['nats_creds'],
        serverRefusal: /authentication error/,
      });
    },
  );
});
