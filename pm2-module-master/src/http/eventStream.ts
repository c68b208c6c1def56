import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStreamOptions {
  /** The document to push, as one line of JSON; called once per tick for all clients. */
  readonly snapshot: () => Promise<string>;
  /** How often to look for a change (and push it). */
  readonly intervalMs: number;
  /** A comment line goes out after this long without a message, so proxies keep the stream open. */
  readonly keepaliveMs?: number;
  /** More simultaneous streams are refused with 503. */
  readonly maxClients?: number;
  /** A failed snapshot is reported here and retried at the next tick. */
  readonly onError: (error: unknown) => void;
}

interface Client {
  lastSent: string | null;
  lastWriteAt: number;
}

/** A client that does not read what we send is dropped before it buffers more than this. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * Server-Sent Events for the status page (`GET /api/events`): each client gets the current
 * document at once, then every change, checked each `intervalMs` (one snapshot per tick, shared by
 * all clients; no timer while nobody listens).
 */
export class EventStream {
  private readonly clients = new Map<ServerResponse, Client>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;

  public constructor(private readonly options: EventStreamOptions) {}

  public get size(): number {
    return this.clients.size;
  }

  /** Takes over a request: answers with the stream, or 503 when closed or full. */
  public async attach(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closed || this.clients.size >= (this.options.maxClients ?? 100)) {
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5' });
      res.end(JSON.stringify({ error: 'too many live status streams; try again later' }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Reverse proxies (nginx) would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const client: Client = { lastSent: null, lastWriteAt: performance.now() };
    this.clients.set(res, client);
    const drop = () => this.clients.delete(res);
    req.once('close', drop);
    res.once('close', drop);
    res.on('error', drop);
    this.write(res, client, 'retry: 2000\n\n');
    this.ensureTimer();
    try {
      this.send(res, client, await this.options.snapshot());
    } catch (error) {
      this.options.onError(error);
    }
  }

  /** Ends every stream; no more are accepted. */
  public close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.clients.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.ticking) return;
    this.ticking = true;
    try {
      const document = await this.options.snapshot();
      const keepaliveMs = this.options.keepaliveMs ?? 15_000;
      for (const [res, client] of this.clients) {
        if (client.lastSent !== document) this.send(res, client, document);
        else if (performance.now() - client.lastWriteAt >= keepaliveMs)
          this.write(res, client, ': keepalive\n\n');
      }
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.ticking = false;
    }
  }

  private send(res: ServerResponse, client: Client, document: string): void {
    if (!this.clients.has(res)) return;
    client.lastSent = document;
    this.write(res, client, `data: ${document}\n\n`);
  }

  private write(res: ServerResponse, client: Client, text: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.clients.delete(res);
      res.destroy();
      return;
    }
    client.lastWriteAt = performance.now();
    res.write(text);
  }
}
