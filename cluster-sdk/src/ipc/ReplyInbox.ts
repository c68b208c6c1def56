import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox } from '@nats-io/transport-node';
import { Deadlines, type DeadlineClock, type DeadlineEntry } from './Deadlines.js';

/** How a request ended: its reply, or why there is none. */
export type ReplyOutcome =
  | { readonly kind: 'reply'; readonly msg: Msg }
  /** Nobody subscribes to the subject (NATS' no-responders status). */
  | { readonly kind: 'no-responders' }
  | { readonly kind: 'timeout' }
  /** The request could not be sent or its reply cannot arrive (closed connection, permissions). */
  | { readonly kind: 'failed'; readonly error: unknown };

export type ReplyCallback = (outcome: ReplyOutcome) => void;

interface Pending extends DeadlineEntry {
  readonly token: string;
  readonly subject: string;
  readonly done: ReplyCallback;
}

const TIMEOUT: ReplyOutcome = { kind: 'timeout' };
const NO_RESPONDERS: ReplyOutcome = { kind: 'no-responders' };

/**
 * Request/reply over one NATS connection with one reply subscription for every request (a
 * wildcard inbox, as nats.js' own `request` uses) and one timer for every timeout ({@link Deadlines}).
 * A request is a plain publish with a reply subject `<inbox>.<token>`, and its answer one map
 * lookup. Unlike `nc.request`, it makes no Promise, timer, random token or Error per request (nats.js
 * builds a "cancelled" RequestError, stack included, for every request that succeeds), and a
 * request to many subjects costs one publish each.
 *
 * Every request ends exactly once: with its reply, no responders, its timeout, or a failure
 * (publish refused, the connection closed, the reply subscription refused).
 */
export class ReplyInbox {
  private readonly pending = new Map<string, Pending>();
  private readonly deadlines: Deadlines<Pending>;
  private subscription: Subscription | null = null;
  private prefix = '';
  private nextToken = 0;
  private watching = false;
  private status: { stop?(): void } | null = null;

  public constructor(
    private readonly nc: NatsConnection,
    clock?: DeadlineClock,
  ) {
    this.deadlines = new Deadlines<Pending>((entry) => this.expire(entry), clock);
  }

  /** Requests currently waiting. */
  public get size(): number {
    return this.pending.size;
  }

  /**
   * Publishes `payload` to `subject` with a reply subject of this inbox; `done` is called once,
   * never synchronously from this call except when the publish itself throws.
   */
  public request(subject: string, payload: Uint8Array, timeoutMs: number, done: ReplyCallback): void {
    let reply: string;
    try {
      reply = this.replySubject();
    } catch (error) {
      done({ kind: 'failed', error });
      return;
    }
    const token = reply.slice(this.prefix.length);
    const entry: Pending = { token, subject, done, settled: false, deadline: 0 };
    this.pending.set(token, entry);
    this.deadlines.add(entry, timeoutMs);
    try {
      this.nc.publish(subject, payload, { reply });
    } catch (error) {
      this.settle(entry, { kind: 'failed', error });
    }
  }

  /** Ends every waiting request with `error` and drops the reply subscription. */
  public close(error: unknown): void {
    const subscription = this.subscription;
    this.subscription = null;
    subscription?.unsubscribe();
    this.status?.stop?.();
    this.status = null;
    this.failAll(error);
  }

  private replySubject(): string {
    if (!this.subscription) this.subscribe();
    return this.prefix + (this.nextToken++).toString(36);
  }

  private subscribe(): void {
    const options = (this.nc as { options?: { inboxPrefix?: string } }).options;
    const prefix = `${createInbox(options?.inboxPrefix)}.`;
    // Subscribed before the first request is published on the same connection: the server has it
    // before any reply can come.
    const subscription = this.nc.subscribe(`${prefix}*`, {
      callback: (error, msg) => {
        if (error) {
          // The subscription was refused (permissions) or ended: requests waiting on it cannot be
          // answered. The next request subscribes again.
          if (this.subscription === subscription) this.subscription = null;
          this.failAll(error);
          return;
        }
        this.deliver(msg);
      },
    });
    this.subscription = subscription;
    this.prefix = prefix;
    if (!this.watching) {
      this.watching = true;
      void this.nc.closed().then((error) => this.close(error ?? new Error('the NATS connection is closed')));
      void this.watchPublishErrors();
    }
  }

  /**
   * The server refuses a publish asynchronously (`-ERR 'Permissions Violation for Publish to …'`):
   * the requests sent there fail at once instead of at their timeout, as with `nc.request`.
   */
  private async watchPublishErrors(): Promise<void> {
    const status = this.nc.status();
    this.status = status as { stop?(): void };
    for await (const event of status) {
      if (event.type !== 'error') continue;
      const error = event.error as { operation?: unknown; subject?: unknown };
      if (error.operation !== 'publish') continue;
      for (const entry of [...this.pending.values()]) {
        if (entry.subject === error.subject) this.settle(entry, { kind: 'failed', error: event.error });
      }
    }
  }

  private deliver(msg: Msg): void {
    const subject = msg.subject;
    if (!subject.startsWith(this.prefix)) return;
    const entry = this.pending.get(subject.slice(this.prefix.length));
    if (!entry) return;
    // No responders: the server's status message (503) in place of a reply.
    const outcome: ReplyOutcome =
      msg.data.length === 0 && msg.headers?.code === 503 ? NO_RESPONDERS : { kind: 'reply', msg };
    this.settle(entry, outcome);
  }

  private settle(entry: Pending, outcome: ReplyOutcome): void {
    if (entry.settled) return;
    entry.settled = true;
    this.pending.delete(entry.token);
    if (this.pending.size === 0) this.deadlines.idle();
    entry.done(outcome);
  }

  private expire(entry: Pending): void {
    // Deadlines marked it settled already.
    this.pending.delete(entry.token);
    if (this.pending.size === 0) this.deadlines.idle();
    entry.done(TIMEOUT);
  }

  private failAll(error: unknown): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    this.deadlines.clear();
    for (const entry of entries) {
      if (entry.settled) continue;
      entry.settled = true;
      entry.done({ kind: 'failed', error });
    }
  }
}
