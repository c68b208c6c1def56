import type http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { waitFor } from 'discluster-testing';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetAlert } from '../src/alerts/alertPolicy';
import { WebhookAlertSender, type WebhookAlertSenderOptions } from '../src/alerts/webhookAlertSender';
import { Receiver } from './webhookReceiver';

/**
 * The webhook sender on its own, against an HTTP receiver on 127.0.0.1 (real sockets, real timers,
 * short windows): deduplication with a count, the bounded queue dropping the oldest with a log
 * line, a 4xx given up at once, and closing, which aborts the POST in flight. What a real MASTER
 * sends is in alerts.test.ts.
 */

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

const receivers: Receiver[] = [];
const senders: WebhookAlertSender[] = [];
afterEach(async () => {
  for (const sender of senders.splice(0)) sender.close();
  for (const receiver of receivers.splice(0)) await receiver.close();
});

async function setup(options: Partial<WebhookAlertSenderOptions> = {}) {
  const hook = await Receiver.start();
  receivers.push(hook);
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  const sender = new WebhookAlertSender({
    url: hook.url,
    bot: 'unit',
    logger,
    secrets: ['unit-token-123456'],
    ...options,
  });
  senders.push(sender);
  return { hook, sender, lines };
}

const failed = (clusterId: number, reason = 'exit code 1'): FleetAlert => ({
  kind: 'cluster-failed',
  hostId: 'alpha',
  clusterId,
  attempts: 3,
  reason,
});

describe('WebhookAlertSender', () => {
  it('sends the same alert once per window, then the repeats once with their count', async () => {
    const { hook, sender } = await setup({ dedupWindowMs: 1_500 });
    for (let i = 1; i <= 5; i++) sender.send(failed(7, `exit code ${i}`));
    sender.send(failed(8)); // another key: not held back
    await waitFor(() => hook.posts.length >= 2, { description: 'the first of each key' });
    expect(hook.titles()).toEqual(['Cluster 7 gave up on host alpha', 'Cluster 8 gave up on host alpha']);
    await waitFor(() => hook.posts.length >= 3, {
      description: 'the repeats, once the window ends',
      timeoutMs: 20_000,
    });
    const repeats = hook.posts[2]!.body;
    expect(repeats.embeds[0].title).toBe('Cluster 7 gave up on host alpha');
    expect(repeats.embeds[0].fields).toContainEqual({ name: 'Count', value: '4', inline: true });
    // The latest repeat is the one described.
    expect(repeats.embeds[0].fields).toContainEqual({ name: 'Reason', value: 'exit code 5', inline: true });
    expect(repeats.content).toContain('4 times since the last message');
    // Nothing further: the repeats were all accounted for.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(hook.posts).toHaveLength(3);
  });

  it('keeps at most queueLimit alerts: the oldest not in flight is dropped, with a log line', async () => {
    const { hook, sender, lines } = await setup({ queueLimit: 3 });
    const held: http.ServerResponse[] = [];
    hook.answer = (res) => void held.push(res);
    for (let id = 1; id <= 6; id++) sender.send(failed(id));
    // send() returned at once for all six, the first still in flight.
    await waitFor(() => held.length === 1, { description: 'the first POST in flight' });
    const drops = lines.filter((line) => line.msg.startsWith('alert queue full'));
    expect(drops.map((line) => line['key'])).toEqual([
      'cluster-failed:alpha:2',
      'cluster-failed:alpha:3',
      'cluster-failed:alpha:4',
    ]);
    expect(drops.every((line) => line.level === 40)).toBe(true);
    hook.answer = (res) => res.writeHead(204).end();
    held[0]!.writeHead(204).end();
    await waitFor(() => hook.posts.length === 3, { description: 'the alerts kept' });
    expect(hook.titles()).toEqual([1, 5, 6].map((id) => `Cluster ${id} gave up on host alpha`));
    await waitFor(() => sender.pending === 0, { description: 'the queue drained' });
  });

  it('gives a 4xx up at once, logging the origin but never the URL’s secret path', async () => {
    const { hook, sender, lines } = await setup();
    hook.answer = (res) =>
      res.writeHead(404).end(JSON.stringify({ message: 'Unknown Webhook', code: 10015 }));
    sender.send(failed(1));
    await waitFor(() => lines.some((line) => line.msg.startsWith('alert not sent')), {
      description: 'the give-up log line',
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(hook.posts).toHaveLength(1);
    const text = JSON.stringify(lines);
    expect(text).toContain(new URL(hook.url).origin);
    expect(text).not.toContain('webhook-secret-7f3a');
  });

  it('close() aborts the POST in flight and sends nothing more', async () => {
    const { hook, sender, lines } = await setup();
    hook.answer = () => undefined;
    sender.send(failed(1));
    sender.send(failed(2));
    await waitFor(() => hook.posts.length === 1, { description: 'the first POST hanging' });
    sender.close();
    sender.send(failed(3));
    expect(sender.pending).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(hook.posts).toHaveLength(1);
    expect(lines.some((line) => line.msg.includes('alerts not sent yet are dropped'))).toBe(true);
  });

  it('a POST nobody answers is given up at requestTimeoutMs and sent again, though collections run meanwhile', async () => {
    // A garbage collection used to drop the timeout (AbortSignal.any of AbortSignal.timeout on
    // Node 20): the POST then hung for good and no alert was ever sent again (a busy CI run).
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const { hook, sender, lines } = await setup({ requestTimeoutMs: 300, backoff: { baseMs: 50 } });
    hook.answer = () => undefined;
    const collecting = setInterval(collectGarbage, 20);
    try {
      sender.send(failed(1));
      await waitFor(() => hook.posts.length >= 3, {
        description: 'two more attempts after the timeouts',
        timeoutMs: 30_000,
      });
    } finally {
      clearInterval(collecting);
    }
    expect(hook.posts[2]!.at - hook.posts[0]!.at).toBeGreaterThanOrEqual(2 * 290);
    expect(lines.some((line) => line.msg.startsWith('alert webhook no answer within 300 ms'))).toBe(true);
  });
});
