import { startNatsCluster, waitFor, type NatsClusterHandle } from 'discluster-testing';
import { afterAll, describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import { Receiver } from './webhookReceiver';

/**
 * The NATS-node alert (issue 17 §2) from a real MASTER on a real 3-node NATS cluster: MASTER sees
 * the cluster's client URLs as its server gossips them (INFO `connect_urls`); a node killed stops
 * being advertised and the leader alerts once; the node restarted is advertised again and the
 * leader says it is back.
 */

let cluster: NatsClusterHandle | undefined;
let master: MasterHandle | undefined;
let hook: Receiver | undefined;

afterAll(async () => {
  await master?.close();
  await hook?.close();
  await cluster?.stop();
}, 120_000);

describe('alert: a NATS cluster lost a node', () => {
  it('alerts once when a node goes and once when it is back', { timeout: 180_000 }, async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    await cluster.waitForMetaLeader();
    hook = await Receiver.start();
    master = await startMaster({
      // MASTER's own server is node 0; node 2 is the one that goes.
      DISCLUSTER_NATS_URL: cluster.urls[0],
      DISCLUSTER_BOT: 'natsnode',
      DISCLUSTER_TOKEN: 'nats-node-test-token-0c55',
      DISCLUSTER_KV_REPLICAS: '3',
      // A replicated bucket stalls for seconds while a node's loss elects new stream leaders.
      DISCLUSTER_LEASE_MS: '30000',
      DISCLUSTER_LEADER_LEASE_MS: '30000',
      DISCLUSTER_LOG_LEVEL: 'silent',
      DISCLUSTER_ALERT_WEBHOOK_URL: hook.url,
    });
    expect(master.state).toBe('running');
    // Leading, with its term running (creating the replicated buckets takes a moment).
    await waitFor(() => master!.master!.fleetView() !== null, {
      description: 'MASTER leading a term',
      timeoutMs: 60_000,
    });
    // The leader watches a little while with every node up: nothing to say.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(hook.posts).toEqual([]);

    const gone = cluster.nodes[2]!;
    await cluster.killNode(2);
    await waitFor(() => hook!.titles().includes('NATS cluster lost a node'), {
      description: 'the NATS-node alert',
      timeoutMs: 60_000,
    });
    const lost = hook.posts.find((post) => post.body.embeds[0].title === 'NATS cluster lost a node')!;
    const port = String(gone.port);
    expect(lost.body.embeds[0].fields).toEqual(
      expect.arrayContaining([
        { name: 'Gone', value: expect.stringContaining(`:${port}`), inline: true },
        { name: 'Still advertised', value: '2', inline: true },
      ]),
    );

    await cluster.restartNode(2);
    await waitFor(() => hook!.titles().includes('NATS node back'), {
      description: 'the NATS-node-back alert',
      timeoutMs: 60_000,
    });
    expect(hook.titles().filter((title) => title === 'NATS cluster lost a node')).toHaveLength(1);
    expect(hook.titles().filter((title) => title === 'NATS node back')).toHaveLength(1);
  });
});
