import { describe, expect, it } from 'vitest';
import { leaseAdvice, natsVersionAdvice } from '../src/leadership/leaseAdvice';

describe('leaseAdvice', () => {
  it('warns about a lease shorter than 30 s on a replicated NATS, and only then', () => {
    expect(leaseAdvice({ kv_replicas: 3, lease_ms: 20_000 })).toMatch(
      /lease_ms is 20000 with kv_replicas 3: .*Set lease_ms to 30000/,
    );
    expect(leaseAdvice({ kv_replicas: 3, lease_ms: 30_000 })).toBeNull();
    expect(leaseAdvice({ kv_replicas: 1, lease_ms: 5_000 })).toBeNull();
  });

  it('warns about a nats-server before 2.9.21 on a replicated NATS, and only then', () => {
    expect(natsVersionAdvice(3, '2.9.10')).toMatch(
      /nats-server 2.9.10 with kv_replicas 3: .*2.9.21 or later/,
    );
    expect(natsVersionAdvice(3, '2.9.21')).toBeNull();
    expect(natsVersionAdvice(3, '2.10.0')).toBeNull();
    expect(natsVersionAdvice(3, '2.11.4-beta')).toBeNull();
    expect(natsVersionAdvice(1, '2.9.10')).toBeNull();
    expect(natsVersionAdvice(3, undefined)).toBeNull();
    expect(natsVersionAdvice(3, 'garbage')).toBeNull();
  });
});
