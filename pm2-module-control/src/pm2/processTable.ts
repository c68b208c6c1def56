import { CLUSTER_CONTROL_TOPIC, type ControlToCluster } from 'discluster-protocol';
import { clusterProcessEnv } from './clusterProcessEnv.js';
import type { Pm2Bus, Pm2Client, Pm2Json } from './daemonClient.js';

/** pm2's `kill_timeout` for clusters: shards close for resume and sessions are saved on SIGINT. */
export const KILL_TIMEOUT_MS = 15_000;

/**
 * This host's cluster processes in pm2's process table: namespace `discluster-<bot>`, names
 * `discluster-<bot>-cluster-<id>`. Every lookup filters on both, so a process an operator started by
 * hand (another namespace or another name) is never touched. Processes are addressed by pm_id: a
 * name alone could also match a process of another namespace.
 */
export class ProcessTable {
  public readonly namespace: string;
  private readonly pattern: RegExp;

  public constructor(
    private readonly pm2: Pm2Client,
    bot: string,
    /** Absolute path of the bot's entry file. */
    private readonly script: string,
    /** CONTROL's environment: only `MALLOC_ARENA_MAX` of it reaches a cluster (clusterProcessEnv). */
    private readonly controlEnv: NodeJS.ProcessEnv = process.env,
  ) {
    this.namespace = `discluster-${bot}`;
    this.pattern = new RegExp(`^${this.namespace}-cluster-\\d+$`);
  }

  /** pm2 process name of a cluster. */
  public nameOf(clusterId: number): string {
    return `${this.namespace}-cluster-${clusterId}`;
  }

  /** Our namespace's cluster processes by name (never anyone else's). */
  public async list(): Promise<Map<string, Pm2Json>> {
    const found = new Map<string, Pm2Json>();
    for (const proc of await this.pm2.list()) {
      const name = String(proc['name']);
      if (proc['pm2_env']?.['namespace'] === this.namespace && this.pattern.test(name)) found.set(name, proc);
    }
    return found;
  }

  /** One of our processes by name, as pm2 describes it now. */
  public async find(name: string): Promise<Pm2Json | undefined> {
    return (await this.pm2.list()).find(
      (proc) => proc['name'] === name && proc['pm2_env']?.['namespace'] === this.namespace,
    );
  }

  public async pmIdOf(name: string): Promise<number | undefined> {
    const found = await this.find(name);
    return typeof found?.['pm_id'] === 'number' ? found['pm_id'] : undefined;
  }

  /** The name of our process a pm2 bus packet is about; undefined for anyone else's. */
  public nameIn(packet: Pm2Json): string | undefined {
    const proc = packet['process'] as Pm2Json | undefined;
    if (!proc || proc['namespace'] !== this.namespace) return undefined;
    return String(proc['name']);
  }

  /** Starts a cluster's process. */
  public async start(name: string, clusterId: number): Promise<void> {
    await this.pm2.start({
      name,
      namespace: this.namespace,
      script: this.script,
      // The cluster id and the malloc arena limit: the token and NATS credentials go over pm2 IPC (promise 4).
      env: clusterProcessEnv(clusterId, this.controlEnv),
      // pm2 copies the caller's whole environment into the app unless filtered, and CONTROL's
      // environment holds its own settings (`discluster-control` JSON, nats_pass). Every key
      // contains '', so this filters all of it; `filter_env: true` is ignored by pm2 7 here.
      filter_env: [''],
      // CONTROL, not pm2, decides about restarts (restartPolicy.ts).
      autorestart: false,
      kill_timeout: KILL_TIMEOUT_MS,
    });
  }

  public restart(pmId: number): Promise<void> {
    return this.pm2.restart(pmId);
  }

  /** pm2 answers once the process is gone (SIGINT: shards close for resume; SIGKILL after kill_timeout). */
  public delete(pmId: number): Promise<void> {
    return this.pm2.delete(pmId);
  }

  /** A CONTROL → cluster message over pm2 IPC, to a process known by pm_id. */
  public send(pmId: number, message: ControlToCluster): Promise<void> {
    return this.pm2.send(pmId, CLUSTER_CONTROL_TOPIC, message);
  }

  /** The same, by name; nothing is sent when pm2 has no such process of ours. */
  public async sendTo(name: string, message: ControlToCluster): Promise<void> {
    const pmId = await this.pmIdOf(name);
    if (pmId === undefined) return;
    await this.pm2.send(pmId, CLUSTER_CONTROL_TOPIC, message);
  }

  /** pm2's event bus: process messages (`process:msg`) and lifecycle events (`process:event`). */
  public bus(): Promise<Pm2Bus> {
    return this.pm2.bus();
  }
}
