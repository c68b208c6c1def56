import type { IncomingMessage, ServerResponse } from 'node:http';

/** The client's IP, with IPv4-mapped IPv6 addresses written as IPv4 (`::ffff:10.0.0.1` → `10.0.0.1`). */
export function clientIp(request: IncomingMessage): string {
  const address = request.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export class BodyError extends Error {
  public constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads a JSON request body (at most `limit` bytes); an empty body is `{}`. */
export async function readJsonBody(request: IncomingMessage, limit = 1024 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    // Past the limit, keep reading and discard: leaving the loop early destroys the request and its
    // socket, and the client then sees a reset instead of the 413.
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw new BodyError(413, `request body is larger than ${limit} bytes`);
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BodyError(400, 'request body is not valid JSON');
  }
}
