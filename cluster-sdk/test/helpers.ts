/** Shared plumbing for the SDK's NATS tests (not a test file: vitest collects *.test.ts). */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { nuid } from '@nats-io/transport-node';

/** A NATS connection that retries forever, as the SDK's processes configure theirs. */
export function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
}

/** A bot namespace no other test uses, so each test gets fresh buckets on a shared server. */
export function uniqueBot(prefix = 't'): string {
  return `${prefix}-${nuid.next().slice(-10)}`;
}

/** Runs registered cleanups in reverse order; every one runs even if another fails. */
export class Cleanup {
  private readonly steps: Array<() => unknown> = [];

  public add(step: () => unknown): void {
    this.steps.push(step);
  }

  public async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup step(s) failed`);
  }
}

/** A session_start_limit with plenty left. */
export const FULL_BUDGET = { total: 1000, remaining: 1000, reset_after: 86_400_000 } as const;
