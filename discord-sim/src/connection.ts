import type { WebSocket } from 'ws';
import { CLIENT_OPCODES, GatewayOpcode } from './opcodes';
import { GatewayCloseCode } from './closeCodes';
import type { FrameEncoder } from './compression';
import { SendRateLimiter } from './sendRateLimiter';
import type { Session } from './session';

/** What a connection asks of the simulator that owns it. */
export interface ConnectionHost {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatToleranceMs: number;
  readonly maxPayloadBytes: number;
  readonly splitCompressedFrames: boolean;
  heartbeatAckEnabled(connection: GatewayConnection): boolean;
  onIdentify(connection: GatewayConnection, data: unknown): void;
  onResume(connection: GatewayConnection, data: unknown): void;
  onCommand(connection: GatewayConnection, op: number, data: unknown): void;
  onSendRateExceeded(connection: GatewayConnection): void;
  onHeartbeatMissed(connection: GatewayConnection): void;
  onClosed(connection: GatewayConnection, code: number): void;
  /** Every server-initiated close goes through the host, so it is counted and the session handled. */
  closeConnection(connection: GatewayConnection, code: number, reason: string): void;
}

let nextConnectionId = 1;

/**
 * One client socket: framing, HELLO, heartbeats, per-connection limits and close handling.
 * Session rules (identify, resume, routing) belong to the host; this class only enforces what
 * Discord enforces per connection and hands valid payloads on.
 */
export class GatewayConnection {
  public readonly id = nextConnectionId++;
  public session: Session | null = null;
  /** Set once the server decided to close, so late frames are ignored and the reason is known. */
  public serverCloseCode: number | null = null;
  public readonly openedAt = Date.now();
  public lastHeartbeatAt = 0;
  public heartbeatAckOverride: boolean | null = null;
  private readonly sendLimiter: SendRateLimiter;
  private heartbeatDeadline: NodeJS.Timeout;
  /** Bumped by every heartbeat: a deadline judged after it was re-armed is no miss. */
  private heartbeatArmedAt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;

  public constructor(
    private readonly socket: WebSocket,
    private readonly encoder: FrameEncoder,
    private readonly host: ConnectionHost,
    sendLimit: number,
    sendWindowMs: number,
    public readonly path: string,
    /** The TCP socket under `socket`, corked by batch(); null when not known. */
    private readonly transport: { cork(): void; uncork(): void } | null = null,
    /** The client's IP (IPv4-mapped IPv6 written as IPv4), as `GET /state` shows it. */
    public readonly remoteAddress = 'unknown',
  ) {
    this.sendLimiter = new SendRateLimiter(sendLimit, sendWindowMs);
    socket.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    socket.on('close', (code) => this.onSocketClosed(code));
    socket.on('error', () => {
      // A broken socket ends in 'close' too; nothing to add here but not crashing.
    });
    this.heartbeatDeadline = setTimeout(() => this.judgeHeartbeat(), this.heartbeatDeadlineMs());
    this.sendOp(GatewayOpcode.Hello, { heartbeat_interval: host.heartbeatIntervalMs });
  }

  public get isOpen(): boolean {
    return this.serverCloseCode === null && this.socket.readyState === this.socket.OPEN;
  }

  /** Sends a non-dispatch payload (`s` and `t` are null for every op except 0). */
  public sendOp(op: number, data: unknown): void {
    this.sendRaw(`{"t":null,"s":null,"op":${op},"d":${JSON.stringify(data ?? null)}}`);
  }

  /** Sends an already serialised gateway message through this connection's compression. */
  public sendRaw(message: string): void {
    if (!this.isOpen) return;
    this.encoder.encode(message, (frame) => {
      if (this.socket.readyState !== this.socket.OPEN) return;
      if (
        this.host.splitCompressedFrames &&
        this.encoder.splittable &&
        typeof frame !== 'string' &&
        frame.length > 1
      ) {
        // One gateway message across two WebSocket messages: clients must buffer until 00 00 ff ff.
        // (Fragments of one WebSocket message, fin:false, are reassembled by the client's WebSocket
        // library and would never reach its zlib buffering.)
        const half = frame.length >> 1;
        this.socket.send(frame.subarray(0, half), { binary: true });
        this.socket.send(frame.subarray(half), { binary: true });
      } else {
        this.socket.send(frame, { binary: typeof frame !== 'string' });
      }
    });
  }

  /**
   * Runs `send` with the TCP socket corked, so a burst of messages (GUILD_CREATE streaming) leaves
   * in one write instead of one system call per message.
   */
  public batch(send: () => void): void {
    this.transport?.cork();
    try {
      send();
    } finally {
      this.transport?.uncork();
    }
  }

  /** Closes from the server side after everything already queued has gone out. */
  public close(code: number, reason = ''): void {
    if (this.serverCloseCode !== null) return;
    this.serverCloseCode = code;
    this.clearTimers();
    void this.encoder.idle().then(() => {
      if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
        this.socket.close(code, reason.slice(0, 120));
      }
    });
  }

  /** Drops the TCP connection without a close frame, like a network failure. */
  public terminate(): void {
    this.serverCloseCode ??= 1006;
    this.clearTimers();
    this.socket.terminate();
  }

  /** Sends op 7 and, like Discord, closes the socket itself a little later if the client has not. */
  public requestReconnect(closeAfterMs: number): void {
    this.sendOp(GatewayOpcode.Reconnect, null);
    this.reconnectTimer ??= setTimeout(
      () => this.host.closeConnection(this, GatewayCloseCode.UnknownError, 'reconnect requested'),
      closeAfterMs,
    );
  }

  private heartbeatDeadlineMs(): number {
    return this.host.heartbeatIntervalMs + this.host.heartbeatToleranceMs;
  }

  /**
   * The deadline passed: a missed heartbeat, unless one waits unread in the socket. When this
   * process was itself starved, Node runs the due timer before the poll phase that reads the
   * socket, so the verdict waits for that read (an immediate runs after it; twice, for a frame whose
   * read completes in the next poll). A heartbeat read meanwhile re-armed the deadline.
   */
  private judgeHeartbeat(): void {
    const armedAt = this.heartbeatArmedAt;
    setImmediate(() =>
      setImmediate(() => {
        if (this.serverCloseCode !== null || this.heartbeatArmedAt !== armedAt) return;
        this.host.onHeartbeatMissed(this);
      }),
    );
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.serverCloseCode !== null) return;
    if (!this.sendLimiter.take()) {
      this.host.onSendRateExceeded(this);
      this.host.closeConnection(this, GatewayCloseCode.RateLimited, 'You are being rate limited.');
      return;
    }
    if (data.length > this.host.maxPayloadBytes) {
      this.host.closeConnection(this, GatewayCloseCode.DecodeError, 'Payload too large.');
      return;
    }
    if (isBinary) {
      // Clients may not send compressed or binary payloads with JSON encoding.
      this.host.closeConnection(this, GatewayCloseCode.DecodeError, 'Error while decoding payload.');
      return;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(data.toString('utf8'));
    } catch {
      this.host.closeConnection(this, GatewayCloseCode.DecodeError, 'Error while decoding payload.');
      return;
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      this.host.closeConnection(this, GatewayCloseCode.DecodeError, 'Error while decoding payload.');
      return;
    }
    const { op, d } = payload as { op?: unknown; d?: unknown };
    if (typeof op !== 'number' || !CLIENT_OPCODES.has(op)) {
      this.host.closeConnection(this, GatewayCloseCode.UnknownOpcode, 'Unknown opcode.');
      return;
    }
    switch (op) {
      case GatewayOpcode.Heartbeat:
        this.onHeartbeat(d);
        return;
      case GatewayOpcode.Identify:
        this.host.onIdentify(this, d);
        return;
      case GatewayOpcode.Resume:
        this.host.onResume(this, d);
        return;
      default:
        if (!this.session) {
          this.host.closeConnection(this, GatewayCloseCode.NotAuthenticated, 'Not authenticated.');
          return;
        }
        this.host.onCommand(this, op, d);
    }
  }

  private onHeartbeat(data: unknown): void {
    if (data !== null && data !== undefined && (typeof data !== 'number' || !Number.isInteger(data))) {
      this.host.closeConnection(this, GatewayCloseCode.UnknownOpcode, 'Invalid heartbeat payload.');
      return;
    }
    this.lastHeartbeatAt = Date.now();
    this.heartbeatArmedAt++;
    this.heartbeatDeadline.refresh();
    if (this.host.heartbeatAckEnabled(this)) this.sendOp(GatewayOpcode.HeartbeatAck, null);
  }

  private onSocketClosed(code: number): void {
    this.clearTimers();
    this.encoder.close();
    this.host.onClosed(this, this.serverCloseCode ?? code);
  }

  private clearTimers(): void {
    clearTimeout(this.heartbeatDeadline);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
  }
}
