import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, isDisclusterError } from 'discluster-protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchGatewayBot, resolveShardCount } from '../src/gatewayBot';

const body = {
  url: 'wss://gateway.example',
  shards: 9,
  session_start_limit: { total: 1000, remaining: 990, reset_after: 1000, max_concurrency: 4 },
};

let server: http.Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A REST stand-in answering each request with the next scripted response. */
async function serve(
  responses: ((res: http.ServerResponse) => void)[],
): Promise<{ api: string; seen: string[] }> {
  const seen: string[] = [];
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    (responses.shift() ?? ((r) => r.writeHead(500).end()))(res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { api: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/api/v10`, seen };
}

const json =
  (status: number, value: unknown, headers: Record<string, string> = {}) =>
  (res: http.ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));

describe('GET /gateway/bot', () => {
  it('sends the token, and retries 5xx, bad bodies and 429 (honouring Retry-After) until it succeeds', async () => {
    const { api, seen } = await serve([
      json(502, {}),
      json(200, { url: 'x' }),
      json(429, { retry_after: 0.05 }, { 'retry-after': '0.05' }),
      json(200, body),
    ]);
    const retries: string[] = [];
    const before = Date.now();
    const result = await fetchGatewayBot({
      api,
      token: 'tok',
      maxBackoffMs: 20,
      onRetry: (problem) => retries.push(problem),
    });
    // Dated by its arrival and labelled with its source, so clusters read the budget right (issue 13 a).
    expect(result).toEqual({ ...body, fetchedAt: expect.any(Number), api });
    expect(result.fetchedAt).toBeGreaterThanOrEqual(before);
    expect(result.fetchedAt).toBeLessThanOrEqual(Date.now());
    expect(seen).toEqual(Array(4).fill('GET /api/v10/gateway/bot Bot tok'));
    expect(retries).toHaveLength(3);
    expect(retries[2]).toMatch(/429/);
  });

  it('a 401 is final: DISCLUSTER_ERR_TOKEN_REJECTED, no retry, the token not in the message', async () => {
    const { api, seen } = await serve([json(401, { message: '401: Unauthorized' })]);
    const error = await fetchGatewayBot({ api, token: 'secret-token-x' }).catch((e: unknown) => e);
    expect(isDisclusterError(error, ErrorCode.TokenRejected)).toBe(true);
    expect(String((error as Error).message)).not.toContain('secret-token-x');
    expect(seen).toHaveLength(1);
  });

  it('stops when aborted', async () => {
    const { api } = await serve([]);
    const controller = new AbortController();
    const pending = fetchGatewayBot({ api, token: 't', signal: controller.signal, maxBackoffMs: 10_000 });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toSatisfy((error) => isDisclusterError(error, ErrorCode.Closed));
  });
});

describe('resolveShardCount', () => {
  it('takes a fixed count as given and rounds auto up to a multiple of max_concurrency', () => {
    expect(resolveShardCount(7, body)).toBe(7);
    expect(resolveShardCount('auto', body)).toBe(12);
    const single = { ...body, session_start_limit: { ...body.session_start_limit, max_concurrency: 1 } };
    expect(resolveShardCount('auto', single)).toBe(9);
  });
});
