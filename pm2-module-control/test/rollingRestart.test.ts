import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { rollingRestart, type RollingTarget } from '../src/clusters/rollingRestart';

/** A host whose clusters restart on request and become ready when the test says so. */
class FakeHost implements RollingTarget {
  public readonly log: string[] = [];
  public online = [0, 1, 2];
  public readyAnswer = (_clusterId: number) => true;
  public onlineClusterIds(): number[] {
    return [...this.online];
  }
  public async restartCluster(clusterId: number): Promise<void> {
    this.log.push(`restart ${clusterId}`);
  }
  public async waitReady(clusterId: number, timeoutMs: number): Promise<boolean> {
    this.log.push(`wait ${clusterId} ${timeoutMs}`);
    return this.readyAnswer(clusterId);
  }
}

const logger = pino({ level: 'silent' });

describe('rollingRestart', () => {
  it('restarts one cluster at a time, each only after the previous one is ready again', async () => {
    const host = new FakeHost();
    const restarted = await rollingRestart(host, { logger, readyTimeoutMs: 500, interrupted: () => false });
    expect(restarted).toEqual([0, 1, 2]);
    expect(host.log).toEqual([
      'restart 0',
      'wait 0 500',
      'restart 1',
      'wait 1 500',
      'restart 2',
      'wait 2 500',
    ]);
  });

  it('goes on with the next cluster when one is not ready in time', async () => {
    const host = new FakeHost();
    host.readyAnswer = (clusterId) => clusterId !== 1;
    expect(await rollingRestart(host, { logger, readyTimeoutMs: 10, interrupted: () => false })).toEqual([
      0, 1, 2,
    ]);
  });

  it('skips clusters gone meanwhile and stops when a newer command arrives', async () => {
    const host = new FakeHost();
    let calls = 0;
    host.readyAnswer = (clusterId) => {
      if (clusterId === 0) host.online = [0, 2];
      return true;
    };
    expect(await rollingRestart(host, { logger, readyTimeoutMs: 10, interrupted: () => false })).toEqual([
      0, 2,
    ]);
    const interrupted = new FakeHost();
    expect(
      await rollingRestart(interrupted, { logger, readyTimeoutMs: 10, interrupted: () => ++calls > 1 }),
    ).toEqual([0]);
  });
});
