import type { LeaseTimes } from './leaseTimes.js';

/**
 * The lease keeper's view of its own event-loop stalls (leaseKeeper.ts), in the spirit of the hang
 * watchdog: a CONTROL that was not scheduled for a while (a CPU-starved machine) wakes up with its
 * timers due, and Node runs due timers before it reads the sockets. The replies to renewals NATS
 * applied during the stall are then waiting unread while the request timeouts and the fence check
 * fire. So neither counts anything as failed before that waiting I/O has been read.
 *
 * What a stall never changes is when a lease may expire: NATS counts the lease time from when it
 * applied the write, which is no earlier than when the request was sent. So a lease is dated by the
 * send time of the last write NATS acknowledged ({@link fenceVerdict}), however late the reply was
 * read, and a stall buys at most one fresh renewal's time ({@link stallGraceMs}) before a fence.
 */

/**
 * What the fence check does about one cluster: nothing (`renewed`), fence it, or first `drain` (read
 * the replies received during the stall) or `renew` (one fresh renewal, after the drain).
 */
export type FenceVerdict = 'renewed' | 'drain' | 'renew' | 'fence';

/**
 * How much later than the fence time a fence may come after a stall, for one fresh renewal: one
 * request bound, at most a tenth of the lease time (a fifth of the fence time). The fence then still
 * comes with 40 % of the lease time left at least (2.4 s of a 6 s lease, 8 s of 20 s).
 */
export function stallGraceMs(times: Pick<LeaseTimes, 'requestTimeoutMs' | 'fenceAfterMs'>): number {
  return Math.min(times.requestTimeoutMs, Math.floor(times.fenceAfterMs / 5));
}

/**
 * The fence check's verdict on a cluster whose oldest lease was last renewed by a request sent at
 * `lastRenewedAt` (NATS counts the lease time from no earlier). `stallMs`: how late the check ran,
 * i.e. how long the loop stalled just before (0: on time, or judged again after the stall was dealt
 * with); `drained`: the replies received meanwhile have been read since.
 *
 * - younger than the fence time (half the lease time): `renewed`;
 * - older, right after a stall: `drain` first (a due timer runs before the sockets are read), then,
 *   while inside {@link stallGraceMs} past the fence time, `renew` (a renewal sent now proves the
 *   lease for a whole lease time; the check judges again with `stallMs` 0 once it is answered or
 *   the grace is over);
 * - otherwise `fence`.
 */
export function fenceVerdict(
  lastRenewedAt: number,
  now: number,
  times: Pick<LeaseTimes, 'fenceAfterMs' | 'requestTimeoutMs'>,
  stallMs: number,
  drained = false,
): FenceVerdict {
  const age = now - lastRenewedAt;
  if (age < times.fenceAfterMs) return 'renewed';
  if (stallMs <= 0) return 'fence';
  if (!drained) return 'drain';
  return age < times.fenceAfterMs + stallGraceMs(times) ? 'renew' : 'fence';
}

/**
 * May CONTROL send a cluster a keepalive now, its leases having last been renewed by requests sent
 * at `oldestRenewedAt` (the oldest of them)? A cluster of this version counts the fence time from
 * that renewal (the keepalive's `renewedAt`), but an older SDK counts from when it reads the
 * message, so a keepalive vouching for a renewal sent long before would let it serve into the last
 * part of the lease. Only while that renewal is younger than half the fence time: such a cluster
 * then fences at the latest a quarter of the lease time before any of its leases can expire.
 */
export function keepaliveVerdict(
  oldestRenewedAt: number,
  now: number,
  times: Pick<LeaseTimes, 'fenceAfterMs'>,
): boolean {
  return now - oldestRenewedAt <= keepaliveWithinMs(times);
}

export function keepaliveWithinMs(times: Pick<LeaseTimes, 'fenceAfterMs'>): number {
  return Math.floor(times.fenceAfterMs / 2);
}

/** How late a timer fired: the loop stalled for about that long (0 when on time). */
export function lateness(dueAt: number, firedAt: number): number {
  return Math.max(0, firedAt - dueAt);
}

/**
 * Lateness below this is ordinary timer jitter. A request timer that fires later than this was
 * held up by a stall, and gets its time again once (see {@link withDeadline}).
 */
export const STALL_MS = 50;

/**
 * Resolves once what the sockets received meanwhile has been read and handled: a due timer runs
 * before the poll phase that reads them, an immediate after it (and the promise chains a read
 * resolves run as microtasks right after it). Twice, for a reply read in the poll phase that follows.
 */
export async function drainIo(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

export class DeadlineError extends Error {
  public constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * `work`, or a {@link DeadlineError} after `ms` of this process's own time: when the timer fires,
 * the replies already received are read first ({@link drainIo}), and a timer that fired late by a
 * stall ({@link STALL_MS} or more) waits `ms` once more, since the request had that much less time
 * while the loop was turning. `work` itself is never abandoned (its own timeout must be longer).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, clock: () => number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let extended = false;
    const arm = (): void => {
      const dueAt = clock() + ms;
      timer = setTimeout(() => {
        const late = lateness(dueAt, clock());
        void drainIo().then(() => {
          if (settled) return;
          if (late >= STALL_MS && !extended) {
            extended = true;
            arm();
            return;
          }
          settled = true;
          reject(new DeadlineError(ms));
        });
      }, ms);
    };
    arm();
    work.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
