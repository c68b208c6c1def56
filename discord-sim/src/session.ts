import type { GatewayConnection } from './connection';

/** Outcome of asking a session to replay from a client's last sequence number. */
export type ReplayPlan =
  | { readonly kind: 'replay'; readonly messages: readonly string[] }
  | { readonly kind: 'seq-ahead' }
  | { readonly kind: 'too-old' };

/**
 * One gateway session. It outlives its socket: dispatches keep being sequenced and buffered while
 * the socket is down, so a RESUME can replay them in order.
 */
export class Session {
  /** Last sequence number handed out. READY is 1. */
  public seq = 0;
  public connection: GatewayConnection | null = null;
  public ended = false;
  public expiryTimer: NodeJS.Timeout | null = null;
  public readonly createdAt = Date.now();

  // Buffered dispatches (already serialised), oldest first; `firstSeq` is the seq of `buffer[head]`.
  private buffer: string[] = [];
  private head = 0;
  private firstSeq = 1;

  public constructor(
    public readonly id: string,
    public readonly shardId: number,
    public readonly shardCount: number,
    public readonly intents: number,
    private readonly replayLimit: number,
  ) {}

  public get routingKey(): string {
    return `${this.shardCount}:${this.shardId}`;
  }

  /** Sequences a dispatch, buffers it for replay, and returns the serialised message. */
  public sequence(eventName: string, dataJson: string): string {
    const seq = ++this.seq;
    const message = `{"t":"${eventName}","s":${seq},"op":0,"d":${dataJson}}`;
    if (this.replayLimit > 0) {
      this.buffer.push(message);
      if (this.buffer.length - this.head > this.replayLimit) this.dropBefore(this.firstSeq + 1);
    } else {
      this.firstSeq = seq + 1;
    }
    return message;
  }

  /** What a RESUME from `clientSeq` gets: the missed dispatches, or why it cannot resume. */
  public planReplay(clientSeq: number): ReplayPlan {
    if (clientSeq > this.seq) return { kind: 'seq-ahead' };
    if (clientSeq + 1 < this.firstSeq) return { kind: 'too-old' };
    return { kind: 'replay', messages: this.buffer.slice(this.head + (clientSeq + 1 - this.firstSeq)) };
  }

  public get bufferedCount(): number {
    return this.buffer.length - this.head;
  }

  private dropBefore(seq: number): void {
    const drop = Math.min(seq - this.firstSeq, this.buffer.length - this.head);
    if (drop <= 0) return;
    this.head += drop;
    this.firstSeq += drop;
    // Compact occasionally so a long-lived session does not keep dead references.
    if (this.head > 1024 && this.head > this.buffer.length / 2) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
  }
}
