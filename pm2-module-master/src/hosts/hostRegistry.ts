import type { HostHeartbeat } from 'discluster-protocol';

/** What MASTER knows of one host: its latest announce or heartbeat and when it arrived. */
export interface KnownHost {
  readonly facts: Omit<HostHeartbeat, 'type'>;
  /** `performance.now()` when the last message arrived (monotonic: never compare host clocks). */
  readonly lastSeen: number;
}

/**
 * The hosts MASTER has heard from. A host is online while its messages keep arriving within
 * `timeoutMs`; MASTER's own start counts as a sighting of every planned host, so a MASTER that
 * just took over does not declare hosts lost before they had a chance to heartbeat.
 */
export class HostRegistry {
  private readonly hosts = new Map<string, KnownHost>();

  public constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly startedAt: number = now(),
  ) {}

  /** Records an announce or heartbeat. Returns true if this is a new boot (new instanceId) of the host. */
  public see(facts: Omit<HostHeartbeat, 'type'>): boolean {
    const previous = this.hosts.get(facts.hostId);
    this.hosts.set(facts.hostId, { facts, lastSeen: this.now() });
    return previous === undefined || previous.facts.instanceId !== facts.instanceId;
  }

  public get(hostId: string): KnownHost | undefined {
    return this.hosts.get(hostId);
  }

  public all(): KnownHost[] {
    return [...this.hosts.values()].sort((a, b) => a.facts.hostId.localeCompare(b.facts.hostId));
  }

  /** True if nothing arrived from `hostId` within the timeout (counting from MASTER's start). */
  public isLost(hostId: string): boolean {
    const lastSeen = this.hosts.get(hostId)?.lastSeen ?? this.startedAt;
    return this.now() - Math.max(lastSeen, this.startedAt) > this.timeoutMs;
  }

  /** Hosts heard from within the timeout. */
  public online(): KnownHost[] {
    return this.all().filter((host) => !this.isLost(host.facts.hostId));
  }

  /** Forgets a host (after its shards moved away; a later heartbeat makes it known again). */
  public forget(hostId: string): void {
    this.hosts.delete(hostId);
  }
}
