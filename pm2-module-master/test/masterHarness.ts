/**
 * The harness the in-process MASTER tests share (not a test file): one nats-server with JetStream,
 * one discord-sim process (for GET /gateway/bot) and one NATS connection for the whole file; the
 * CONTROLs are played by the test (FakeHost). After each test the hosts stop, then the MASTERs
 * close, so no test's fleet leaks into the next one.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FleetStatusSchema, isDisclusterError, type FleetStatus } from 'discluster-protocol';
import {
  startDiscordSimProcess,
  startNatsServer,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { FleetClient } from '../src/cli/fleetClient';
import type { MasterHandle } from '../src/startMaster';
import { FakeHost, type FakeHostOptions } from './fakeHost';

export interface MasterHarness<M extends { close(): Promise<void> }> {
  readonly nats: NatsServerHandle;
  readonly sim: DiscordSimProcess;
  /** The test's own connection (what FakeHosts and raw publishes use). */
  readonly nc: NatsConnection;
  /** MASTERs the test started: closed after each test, after the hosts. */
  readonly running: M[];
  /** FakeHosts the test started: stopped after each test. */
  readonly hosts: FakeHost[];
  /** A bot name no other test of the file used: `prefix` and a counter shared by the file. */
  nextBot(prefix: string): string;
  /** The settings every test MASTER shares (NATS, bot, token, sim, lease times), plus `extra`. */
  masterEnv(bot: string, extra?: Readonly<Record<string, string>>): NodeJS.ProcessEnv;
  /** A FakeHost, started and tracked. */
  host(options: FakeHostOptions): Promise<FakeHost>;
  /** An operator's connection to the fleet, as `discluster` opens it. */
  client(bot: string): Promise<FleetClient>;
  /** MASTER's answer to `discluster status`. */
  status(bot: string): Promise<FleetStatus>;
  /** MASTER's answer to an operator request (`v: 1` added), or its error code and message. */
  ask(bot: string, request: Record<string, unknown>): Promise<{ result?: unknown; code?: string }>;
  /**
   * alpha (3 cores), beta (1 core) and the standby gamma, planned by the MASTER `start` starts
   * (expecting the 3 hosts): resolves once alpha and beta have their first assignments.
   */
  threeHostFleet<T>(
    bot: string,
    start: (extra: Record<string, string>) => Promise<T>,
  ): Promise<{ alpha: FakeHost; beta: FakeHost; gamma: FakeHost; master: T }>;
}

/** Registers the file's hooks and returns the harness; `simFlags` are discord-sim's command-line flags. */
export function useMasterHarness<M extends { close(): Promise<void> } = MasterHandle>(
  token: string,
  simFlags: Readonly<Record<string, number>>,
): MasterHarness<M> {
  let nats: NatsServerHandle | undefined;
  let sim: DiscordSimProcess | undefined;
  let nc: NatsConnection | undefined;
  let botNo = 0;
  const running: M[] = [];
  const hosts: FakeHost[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    sim = await startDiscordSimProcess({ token, ...simFlags });
    nc = await connect({ servers: nats.url });
  });
  afterEach(async () => {
    for (const host of hosts.splice(0)) host.stop();
    for (const master of running.splice(0)) await master.close();
  });
  afterAll(async () => {
    await nc?.drain().catch(() => undefined);
    await sim?.stop();
    await nats?.stop();
  });

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} not started yet (use the harness inside a test)`);
    return value;
  };
  const harness: MasterHarness<M> = {
    get nats() {
      return started(nats, 'nats-server');
    },
    get sim() {
      return started(sim, 'discord-sim');
    },
    get nc() {
      return started(nc, 'the NATS connection');
    },
    running,
    hosts,
    nextBot: (prefix) => `${prefix}${++botNo}`,
    masterEnv: (bot, extra = {}) => ({
      DISCLUSTER_NATS_URL: harness.nats.url,
      DISCLUSTER_BOT: bot,
      DISCLUSTER_TOKEN: token,
      DISCLUSTER_DISCORD_API: harness.sim.rest,
      DISCLUSTER_LEASE_MS: '2000',
      DISCLUSTER_LEADER_LEASE_MS: '1500',
      ...extra,
    }),
    async host(options) {
      const fake = new FakeHost(harness.nc, options);
      hosts.push(fake);
      await fake.start();
      return fake;
    },
    client: (bot) => FleetClient.connect({ nats_url: [harness.nats.url] }, bot),
    async status(bot) {
      const fleet = await harness.client(bot);
      try {
        return FleetStatusSchema.parse(await fleet.askMaster({ v: 1, type: 'status' }, 5_000));
      } finally {
        await fleet.close();
      }
    },
    async ask(bot, request) {
      const fleet = await harness.client(bot);
      try {
        return { result: await fleet.askMaster({ v: 1, ...request } as never, 30_000) };
      } catch (error) {
        if (isDisclusterError(error)) return { code: error.code, result: error.message };
        throw error;
      } finally {
        await fleet.close();
      }
    },
    async threeHostFleet(bot, start) {
      const alpha = await harness.host({ bot, id: 'alpha', cores: 3 });
      const beta = await harness.host({ bot, id: 'beta', cores: 1 });
      const gamma = await harness.host({ bot, id: 'gamma', cores: 2, role: 'standby' });
      const master = await start({ DISCLUSTER_EXPECTED_HOSTS: '3', DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000' });
      await waitFor(() => alpha.epoch === 1 && beta.epoch === 1, {
        description: 'the first assignments',
        timeoutMs: 20_000,
      });
      return { alpha, beta, gamma, master };
    },
  };
  return harness;
}
