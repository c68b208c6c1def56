import path from 'node:path';
import { findNatsServerBinary } from './natsServer.js';
import {
  kill,
  launchWithPorts,
  makeTempDir,
  relaunchOnPort,
  removeTempDir,
  terminate,
  type RunningServer,
} from './natsProcess.js';
import { getFreePort } from './processes.js';
import { waitFor } from './waitFor.js';

export interface NatsClusterOptions {
  /** How many nodes (default 3: the smallest cluster that survives losing one). */
  nodes?: number;
  /** Extra nats-server flags for every node, appended after ours. */
  args?: string[];
}

/** One node of a {@link NatsClusterHandle}; ports and store stay the same across restarts. */
export interface NatsClusterNode {
  readonly index: number;
  /** server_name, as JetStream reports leaders. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** HTTP monitoring port (/varz, /jsz, /subsz); fixed across restarts. */
  readonly monitorPort: number;
  readonly storeDir: string;
  /** The current pid (changes after restartNode), -1 while the node is down. */
  readonly pid: number;
  readonly running: boolean;
}

export interface NatsClusterHandle {
  /** Client URLs of every node, for a client's `servers` option or a `nats_url` list. */
  readonly urls: readonly string[];
  readonly nodes: readonly NatsClusterNode[];
  /** Stops every node (SIGTERM, SIGKILL after a grace period) and removes every store. */
  stop(): Promise<void>;
  /** Graceful stop of one node; its store stays for restartNode. */
  stopNode(index: number): Promise<void>;
  /** SIGKILL one node (a crash); its store stays for restartNode. */
  killNode(index: number): Promise<void>;
  /** Starts a stopped or killed node again on the same ports and store (stops it first if up). */
  restartNode(index: number): Promise<void>;
  /** Index of the node the running nodes agree is JetStream meta leader; undefined while none is. */
  metaLeader(): Promise<number | undefined>;
  /** Waits (bounded) until the running nodes agree on a meta leader; returns its index. */
  waitForMetaLeader(): Promise<number>;
  /** Index of the node leading a stream's replica group (KV bucket `b` is stream `KV_b`). */
  streamLeader(streamName: string): Promise<number | undefined>;
  /**
   * Whether node `index` is back in every replicated stream: running, and leader or a current
   * (caught-up, online) replica of every stream a running leader reports replicas for.
   */
  caughtUp(index: number): Promise<boolean>;
  /** What one node logged so far (all its runs). */
  log(index: number): string;
}

// Liveness bound: a fresh cluster elects a meta leader in a few seconds; noisy CI is slower.
const META_LEADER_TIMEOUT_MS = 60_000;
const MONITOR_TIMEOUT_MS = 2_000;
const LOG_CHARS = 1_000_000;
// Route ports are picked before the servers bind them; another process may take one first.
const START_ATTEMPTS = 3;

interface NodeState {
  index: number;
  name: string;
  dir: string;
  storeDir: string;
  portsDir: string;
  routePort: number;
  clientPort: number;
  monitorPort: number;
  server: RunningServer | undefined;
  log: string;
}

interface JszMeta {
  meta_cluster?: { leader?: string };
  account_details?: {
    stream_detail?: {
      name?: string;
      cluster?: { leader?: string; replicas?: { name?: string; current?: boolean; offline?: boolean }[] };
    }[];
  }[];
}

/**
 * Starts a JetStream cluster of `nodes` nats-servers on 127.0.0.1 (random client, route and
 * monitoring ports, one store per node) and waits until it has a meta leader.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`nodes must be an integer >= 1, got ${count}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(count, options.args ?? []);
    } catch (error) {
      if (attempt >= START_ATTEMPTS || !/address already in use/i.test(String(error))) throw error;
    }
  }
}

async function startOnce(count: number, extraArgs: string[]): Promise<NatsClusterHandle> {
  const bin = findNatsServerBinary();
  const tmpDir = await makeTempDir('discluster-nats-cluster-');
  const clusterName = `discluster-test-${path.basename(tmpDir).slice(-6)}`;
  const nodes: NodeState[] = [];
  for (let index = 0; index < count; index++) {
    const dir = path.join(tmpDir, `node${index}`);
    nodes.push({
      index,
      name: `node${index}`,
      dir,
      storeDir: path.join(dir, 'store'),
      portsDir: path.join(dir, 'ports'),
      routePort: await getFreePort(),
      clientPort: -1,
      monitorPort: -1,
      server: undefined,
      log: '',
    });
  }
  const routes = nodes.map((node) => `nats://127.0.0.1:${node.routePort}`).join(',');
  const argsFor = (node: NodeState): string[] => [
    '-a',
    '127.0.0.1',
    '-p',
    String(node.clientPort),
    '-m',
    String(node.monitorPort),
    '-n',
    node.name,
    '-js',
    '-sd',
    node.storeDir,
    '--cluster_name',
    clusterName,
    '--cluster',
    `nats://127.0.0.1:${node.routePort}`,
    // Every node lists every route, itself included (nats-server ignores its own).
    '--routes',
    routes,
    '--ports_file_dir',
    node.portsDir,
    ...extraArgs,
  ];
  const keepLog = (node: NodeState) => (text: string) => {
    node.log = (node.log + text).slice(-LOG_CHARS);
  };
  const running = (): NodeState[] => nodes.filter((node) => node.server !== undefined);
  const nodeAt = (index: number): NodeState => {
    const node = nodes[index];
    if (node === undefined) throw new Error(`no node ${index} (the cluster has ${nodes.length})`);
    return node;
  };

  let stopped = false;
  const stopAllNodes = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => down(node, terminate)));
    await removeTempDir(tmpDir);
  };

  try {
    // All at once: a node waits for its routes, and JetStream needs a quorum to elect.
    await Promise.all(
      nodes.map(async (node) => {
        const { server, ready } = await launchWithPorts(bin, argsFor(node), node.portsDir, keepLog(node));
        node.server = server;
        const ports = await ready;
        node.clientPort = ports.client;
        if (ports.monitoring === undefined) throw new Error(`${node.name} reported no monitoring port`);
        node.monitorPort = ports.monitoring;
      }),
    );
  } catch (error) {
    await stopAllNodes();
    throw error;
  }

  const metaLeader = async (): Promise<number | undefined> => {
    const up = running();
    const seen = await Promise.all(up.map(async (node) => (await jsz(node, ''))?.meta_cluster?.leader));
    const leader = seen[0];
    // Only an answer every running node gives: right after a failover they briefly disagree.
    if (leader === undefined || leader === '' || seen.some((name) => name !== leader)) return undefined;
    const index = nodes.findIndex((node) => node.name === leader);
    return index >= 0 && nodes[index]?.server !== undefined ? index : undefined;
  };

  const waitForMetaLeader = async (): Promise<number> => {
    let leader: number | undefined;
    await waitFor(async () => (leader = await metaLeader()) !== undefined, {
      description: 'a JetStream meta leader that every running node agrees on',
      timeoutMs: META_LEADER_TIMEOUT_MS,
      intervalMs: 200,
    });
    return leader as number;
  };

  const handle: NatsClusterHandle = {
    urls: nodes.map((node) => `nats://127.0.0.1:${node.clientPort}`),
    nodes: nodes.map((node) => ({
      index: node.index,
      name: node.name,
      url: `nats://127.0.0.1:${node.clientPort}`,
      port: node.clientPort,
      monitorPort: node.monitorPort,
      storeDir: node.storeDir,
      get pid() {
        return node.server?.pid ?? -1;
      },
      get running() {
        return node.server !== undefined;
      },
    })),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAllNodes();
    },
    stopNode: (index) => down(nodeAt(index), terminate),
    killNode: (index) => down(nodeAt(index), kill),
    async restartNode(index) {
      if (stopped) throw new Error('restartNode() called on a stopped cluster');
      const node = nodeAt(index);
      await down(node, terminate);
      node.server = await relaunchOnPort(bin, argsFor(node), node.portsDir, keepLog(node));
    },
    metaLeader,
    waitForMetaLeader,
    async streamLeader(streamName) {
      for (const node of running()) {
        const details = (await jsz(node, '?streams=true'))?.account_details ?? [];
        for (const stream of details.flatMap((account) => account.stream_detail ?? [])) {
          const leader = stream.name === streamName ? stream.cluster?.leader : undefined;
          const index = nodes.findIndex((candidate) => candidate.name === leader);
          if (index >= 0 && nodes[index]?.server !== undefined) return index;
        }
      }
      return undefined;
    },
    async caughtUp(index) {
      const node = nodeAt(index);
      if (node.server === undefined) return false;
      let seen = 0;
      for (const leader of running()) {
        const details = (await jsz(leader, '?streams=true'))?.account_details;
        if (details === undefined) return false;
        for (const stream of details.flatMap((account) => account.stream_detail ?? [])) {
          const replicas = stream.cluster?.replicas ?? [];
          // Only the leader's report counts, and only for replicated streams.
          if (stream.cluster?.leader !== leader.name || replicas.length === 0) continue;
          seen++;
          if (leader === node) continue;
          const replica = replicas.find((peer) => peer.name === node.name);
          if (replica?.current !== true || replica.offline === true) return false;
        }
      }
      return seen > 0;
    },
    log: (index) => nodeAt(index).log,
  };

  try {
    await waitForMetaLeader();
  } catch (error) {
    await stopAllNodes();
    throw error;
  }
  return handle;
}

async function down(node: NodeState, how: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = node.server;
  if (server === undefined) return;
  await how(server);
  node.server = undefined;
}

/** The node's `/jsz` monitoring answer; undefined if it does not answer in time. */
async function jsz(node: NodeState, query: string): Promise<JszMeta | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${node.monitorPort}/jsz${query}`, {
      signal: AbortSignal.timeout(MONITOR_TIMEOUT_MS),
    });
    return response.ok ? ((await response.json()) as JszMeta) : undefined;
  } catch {
    // Down, restarting or too busy to answer: no opinion.
    return undefined;
  }
}
