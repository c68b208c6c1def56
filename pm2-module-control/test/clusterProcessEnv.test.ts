import { describe, expect, it } from 'vitest';
import { DEFAULT_MALLOC_ARENA_MAX, clusterProcessEnv } from '../src/pm2/clusterProcessEnv';

describe('clusterProcessEnv', () => {
  it('gives a cluster its id and the default arena limit, and nothing else of CONTROL', () => {
    const env = clusterProcessEnv(3, { DISCLUSTER_NATS_PASS: 'secret', DISCLUSTER_SCRIPT: '/srv/bot.js' });
    expect(env).toEqual({ DISCLUSTER_CLUSTER_ID: '3', MALLOC_ARENA_MAX: DEFAULT_MALLOC_ARENA_MAX });
    expect(DEFAULT_MALLOC_ARENA_MAX).toBe('2');
  });

  it("keeps an operator's own positive MALLOC_ARENA_MAX", () => {
    for (const value of ['1', '4', '64'])
      expect(clusterProcessEnv(0, { MALLOC_ARENA_MAX: value })['MALLOC_ARENA_MAX']).toBe(value);
  });

  it('uses the default for a value glibc would not take', () => {
    for (const value of ['', '0', '-1', 'two', '2.5', ' 2', '99999'])
      expect(clusterProcessEnv(0, { MALLOC_ARENA_MAX: value })['MALLOC_ARENA_MAX']).toBe('2');
  });
});
