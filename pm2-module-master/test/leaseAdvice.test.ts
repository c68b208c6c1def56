import { describe, expect, it } from 'vitest';
import { leaseAdvice } from '../src/leadership/leaseAdvice';

describe('leaseAdvice', () => {
  it('warns about a lease shorter than 30 s on a replicated NATS, and only then', () => {
    expect(leaseAdvice({ kv_replicas: 3, lease_ms: 20_000 })).toMatch(
      /lease_ms is 20000 with kv_replicas 3: .*Set lease_ms to 30000/,
    );
    expect(leaseAdvice({ kv_replicas: 3, lease_ms: 30_000 })).toBeNull();
    expect(leaseAdvice({ kv_replicas: 1, lease_ms: 5_000 })).toBeNull();
  });
});
