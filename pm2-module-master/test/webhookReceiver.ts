import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookPayload } from '../src/alerts/alertPolicy';

/** One POST a {@link Receiver} got. */
export interface Post {
  /** `Date.now()` when the request arrived. */
  readonly at: number;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: WebhookPayload;
}

/**
 * A webhook receiver on 127.0.0.1:0. `answer` decides each response (index = the POST's number);
 * by default 204, as Discord answers an executed webhook. An answer that does nothing leaves the
 * request hanging.
 */
export class Receiver {
  public readonly posts: Post[] = [];
  public answer: (res: http.ServerResponse, index: number, post: Post) => void = (res) =>
    res.writeHead(204).end();
  private constructor(private readonly server: http.Server) {}

  public static async start(): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const index = receiver.posts.length;
        const post: Post = {
          at: Date.now(),
          path: req.url ?? '',
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload,
        };
        receiver.posts.push(post);
        receiver.answer(res, index, post);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  /** A Discord-like webhook URL: its path carries a secret. */
  public get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/webhooks/42/webhook-secret-7f3a`;
  }

  public titles(): string[] {
    return this.posts.map((post) => post.body.embeds[0].title);
  }

  public async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
