import { SnowflakeGenerator } from './snowflake';
import type { GatewaySimulator } from './simulator';
import { userMessage } from './userMessage';

const TICK_MS = 10;

export interface TrafficRun {
  readonly id: number;
  readonly eventsPerSecond: number;
  readonly seconds: number;
  readonly total: number;
  sent: number;
  done: boolean;
  readonly startedAt: number;
  finishedAt: number | null;
}

/**
 * MESSAGE_CREATE load: `eventsPerSecond` for `seconds`, spread over every guild. Each message has a
 * unique snowflake `id` and a `nonce` of `<runId>:<n>` (n from 0), so tests can count delivery.
 */
export class TrafficGenerator {
  private readonly runs = new Map<number, TrafficRun>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ids = new SnowflakeGenerator(2);
  private nextRunId = 1;
  /** The user every generated message is from (a member of every guild for REST). */
  public readonly authorId: string;

  public constructor(private readonly simulator: GatewaySimulator) {
    this.authorId = this.ids.next();
  }

  public start(eventsPerSecond: number, seconds: number): TrafficRun {
    const run: TrafficRun = {
      id: this.nextRunId++,
      eventsPerSecond,
      seconds,
      total: Math.round(eventsPerSecond * seconds),
      sent: 0,
      done: false,
      startedAt: Date.now(),
      finishedAt: null,
    };
    this.runs.set(run.id, run);
    const timer = setInterval(() => {
      // Catch up to where the schedule says we should be, so a slow tick does not lower the rate.
      const due = Math.min(
        run.total,
        Math.floor(((Date.now() - run.startedAt) / 1000) * eventsPerSecond) + 1,
      );
      while (run.sent < due) this.emit(run);
      if (run.sent >= run.total) this.finish(run, timer);
    }, TICK_MS);
    this.timers.add(timer);
    if (run.total === 0) this.finish(run, timer);
    return run;
  }

  public get(id: number): TrafficRun | undefined {
    return this.runs.get(id);
  }

  public list(): TrafficRun[] {
    return [...this.runs.values()];
  }

  public stopAll(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
  }

  private finish(run: TrafficRun, timer: NodeJS.Timeout): void {
    clearInterval(timer);
    this.timers.delete(timer);
    run.done = true;
    run.finishedAt = Date.now();
  }

  private emit(run: TrafficRun): void {
    const n = run.sent++;
    const guilds = this.simulator.guilds;
    if (guilds.size === 0) return;
    // Guild ids are random modulo any shard count, so walking the guilds in order spreads load over shards.
    const guildIndex = n % guilds.size;
    this.simulator.dispatch(
      'MESSAGE_CREATE',
      userMessage({
        id: this.ids.next(),
        channelId: guilds.channelId(guildIndex),
        guildId: guilds.id(guildIndex),
        author: { id: this.authorId, username: 'sim-user', global_name: 'Sim User' },
        content: `simulated message ${n}`,
        nonce: `${run.id}:${n}`,
      }),
      guildIndex,
    );
  }
}
