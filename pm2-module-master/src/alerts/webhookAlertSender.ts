import { deadlineSignal } from 'discluster-runtime';
import type { Logger } from '../logger.js';
import {
  AlertDeduper,
  DefaultBackoffPolicy,
  alertKey,
  renderAlert,
  retryDecision,
  type BackoffPolicy,
  type FleetAlert,
  type WebhookAnswer,
  type WebhookPayload,
} from './alertPolicy.js';

/** Where a term's alerts go: one call per thing that happened, which never blocks and never throws. */
export interface AlertSink {
  send(alert: FleetAlert): void;
}

/** The sink of a MASTER without `alert_webhook_url`. */
export const NO_ALERTS: AlertSink = { send: () => undefined };

export interface WebhookAlertSenderOptions {
  /** `alert_webhook_url`. A secret (a Discord webhook URL carries its token): only its origin is logged. */
  readonly url: string;
  readonly bot: string;
  readonly logger: Logger;
  /** The bot token and NATS credentials: redacted from every alert. */
  readonly secrets: readonly string[];
  /** Alerts waiting to be sent beyond this drop the oldest (with a log line). @defaultValue 100 */
  readonly queueLimit?: number;
  /** Each POST is aborted after this long (and retried). @defaultValue 10_000 */
  readonly requestTimeoutMs?: number;
  /** The same alert key within this window is sent once, with a count. @defaultValue 600_000 */
  readonly dedupWindowMs?: number;
  readonly backoff?: Partial<BackoffPolicy>;
  /** For tests: the HTTP client (default: Node's `fetch`) and the clock (default: `Date.now`). */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

interface Queued {
  readonly kind: FleetAlert['kind'];
  readonly key: string;
  readonly body: string;
}

/**
 * Sends alerts to `alert_webhook_url` as Discord webhook messages, fire-and-forget: {@link send}
 * renders, deduplicates and queues, and returns at once. One POST at a time (in order, and a 429
 * holds the rest back as the receiver asked), each bounded by a timeout and retried with
 * exponential backoff. The queue is bounded: past `queueLimit` the oldest alert is dropped, with a
 * log line. Closing aborts the POST in flight and drops what is left.
 */
export class WebhookAlertSender implements AlertSink {
  readonly #url: string;
  readonly #origin: string;
  private readonly queue: Queued[] = [];
  private readonly deduper: AlertDeduper<FleetAlert>;
  private readonly policy: BackoffPolicy;
  private readonly closing = new AbortController();
  private pumping = false;
  private dueTimer: NodeJS.Timeout | undefined;
  private readonly queueLimit: number;
  private readonly requestTimeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;

  public constructor(private readonly options: WebhookAlertSenderOptions) {
    this.#url = options.url;
    this.#origin = new URL(options.url).origin;
    this.queueLimit = Math.max(1, options.queueLimit ?? 100);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.deduper = new AlertDeduper(options.dedupWindowMs ?? 600_000);
    this.policy = { ...DefaultBackoffPolicy, ...options.backoff };
    this.fetch = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  /** Where alerts go, for logs: the origin only (the path of a Discord webhook URL is its token). */
  public get origin(): string {
    return this.#origin;
  }

  /** Alerts queued and not sent yet (the one in flight included). */
  public get pending(): number {
    return this.queue.length;
  }

  public send(alert: FleetAlert): void {
    if (this.closing.signal.aborted) return;
    try {
      const key = alertKey(alert);
      if (this.deduper.offer(key, alert, this.now()) === 'held') {
        this.armDueTimer();
        return;
      }
      this.enqueue(alert, key, 1);
    } catch (error) {
      // An alert must never take MASTER down.
      this.options.logger.error({ err: String(error), alert: alert.kind }, 'could not queue an alert');
    }
  }

  /** Stops sending: aborts the POST in flight, drops the queue. */
  public close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    clearTimeout(this.dueTimer);
    if (this.queue.length > 0)
      this.options.logger.warn(
        { dropped: this.queue.length, webhook: this.#origin },
        'MASTER is closing: alerts not sent yet are dropped',
      );
    this.queue.length = 0;
  }

  private enqueue(alert: FleetAlert, key: string, count: number): void {
    const payload: WebhookPayload = renderAlert(alert, {
      bot: this.options.bot,
      at: this.now(),
      count,
      secrets: this.options.secrets,
    });
    this.queue.push({ kind: alert.kind, key, body: JSON.stringify(payload) });
    // The one in flight (index 0 while pumping) stays: it is being sent.
    while (this.queue.length > this.queueLimit) {
      const dropped = this.queue.splice(this.pumping ? 1 : 0, 1)[0];
      this.options.logger.warn(
        { alert: dropped?.kind, key: dropped?.key, queueLimit: this.queueLimit, webhook: this.#origin },
        'alert queue full: dropped the oldest alert not sent yet',
      );
    }
    void this.pump();
  }

  /** Sends the repeats held back once their window ends. */
  private armDueTimer(): void {
    if (this.dueTimer !== undefined) return;
    const next = this.deduper.nextDueAt();
    if (next === null) return;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = undefined;
        if (this.closing.signal.aborted) return;
        for (const due of this.deduper.takeDue(this.now())) this.enqueue(due.item, due.key, due.count);
        this.armDueTimer();
      },
      Math.max(0, next - this.now()),
    );
    this.dueTimer.unref();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closing.signal.aborted) {
        const item = this.queue[0]!;
        await this.deliver(item);
        if (this.queue[0] === item) this.queue.shift();
      }
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(item: Queued): Promise<void> {
    const logger = this.options.logger;
    for (let attempt = 1; ; attempt++) {
      let answer: WebhookAnswer | null = null;
      let problem: string;
      const deadline = deadlineSignal(this.requestTimeoutMs, [this.closing.signal]);
      try {
        const response = await this.fetch(this.#url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: item.body,
          signal: deadline.signal,
        });
        const text = await response.text().catch(() => '');
        if (response.ok) {
          if (attempt > 1) logger.info({ alert: item.kind, attempt, webhook: this.#origin }, 'alert sent');
          return;
        }
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON: only the status and headers count.
        }
        answer = { status: response.status, retryAfter: response.headers.get('retry-after'), body };
        problem = `answered ${response.status}`;
      } catch (error) {
        if (this.closing.signal.aborted) return;
        problem =
          error instanceof Error && error.name === 'TimeoutError'
            ? `no answer within ${this.requestTimeoutMs} ms`
            : // The URL is a secret: never let an error message carry it into the log.
              `unreachable (${(error instanceof Error ? error.message : String(error)).split(this.#url).join(this.#origin)})`;
      } finally {
        deadline.dispose();
      }
      const decision = retryDecision(answer, attempt, this.policy, this.now());
      if (!decision.retry) {
        logger.error(
          { alert: item.kind, key: item.key, attempt, webhook: this.#origin, problem },
          `alert not sent: the webhook ${problem}; ${decision.why}`,
        );
        return;
      }
      logger.warn(
        { alert: item.kind, attempt, waitMs: decision.waitMs, webhook: this.#origin, problem },
        `alert webhook ${problem}: retrying`,
      );
      if (!(await this.sleep(decision.waitMs))) return;
    }
  }

  /** Waits `ms`; false if the sender closed meanwhile. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.closing.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      timer.unref();
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
