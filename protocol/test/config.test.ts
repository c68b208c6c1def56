import { describe, expect, it } from 'vitest';
import { ControlConfigSchema, MasterConfigSchema, formatConfigIssues, loadModuleConfig } from '../src/config';
import { canonicalAddress, sourceAddressOf, sourceAddressesNotOnHost } from '../src/sourceAddresses';

const control = (env: Record<string, string>) =>
  loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env });
const master = (env: Record<string, string>) =>
  loadModuleConfig(MasterConfigSchema, { moduleName: 'discluster-master', env });

describe('loadModuleConfig', () => {
  it('applies the documented defaults', () => {
    const result = control({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      nats_url: ['nats://127.0.0.1:4222'],
      bot: 'default',
      role: 'active',
      shards_per_cluster: 10,
      retry_ms: 30_000,
      max_cluster_restarts: 3,
      log_level: 'info',
    });
    expect(result.config.host_id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    const masterResult = master({});
    expect(masterResult.ok && masterResult.config).toMatchObject({
      discord_api: 'https://discord.com/api/v10',
      shards: 'auto',
      wait_for_hosts_ms: 45_000,
      http_host: '127.0.0.1',
    });
  });

  it('reads the pm2 module section (strings) and lets DISCLUSTER_* override it', () => {
    const result = control({
      'discluster-control': JSON.stringify({ retry_ms: '5000', role: 'standby', module_conf: '{}' }),
      DISCLUSTER_RETRY_MS: '7000',
      DISCLUSTER_NATS_URL: 'nats://a:4222, nats://b:4222',
      DISCLUSTER_CLUSTER_ID: '3',
    });
    expect(result.ok && result.config).toMatchObject({
      retry_ms: 7000,
      role: 'standby',
      nats_url: ['nats://a:4222', 'nats://b:4222'],
    });
  });

  it.each([
    [{ DISCLUSTER_RETRY_MS: 'soon' }, 'retry_ms'],
    [{ DISCLUSTER_RETRY_MS: '5' }, 'retry_ms'],
    [{ DISCLUSTER_ROLE: 'leader' }, 'role'],
    [{ DISCLUSTER_BOT: 'my bot' }, 'bot'],
    [{ DISCLUSTER_NATS_URL: 'http://x' }, 'nats_url'],
    [{ DISCLUSTER_SHARDS_PER_CLUSTER: '0' }, 'shards_per_cluster'],
    [{ DISCLUSTER_MAX_CLUSTER_RESTARTS: '1.5' }, 'max_cluster_restarts'],
    [{ DISCLUSTER_LOG_LEVEL: 'loud' }, 'log_level'],
    [{ DISCLUSTER_RETRY_MSS: '100' }, 'retry_mss'],
    [{ 'discluster-control': 'not json' }, 'discluster-control'],
  ])('names the key of a bad value: %o', (env, key) => {
    const result = control(env as Record<string, string>);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((issue) => issue.key)).toContain(key);
    expect(formatConfigIssues('discluster-control', result.issues)).toContain(key);
  });

  it('master: shards is auto or a number; token and token_file are exclusive', () => {
    expect(master({ DISCLUSTER_SHARDS: '64' }).ok && master({ DISCLUSTER_SHARDS: '64' })).toMatchObject({
      config: { shards: 64 },
    });
    const bad = master({ DISCLUSTER_SHARDS: 'lots' });
    expect(!bad.ok && bad.issues[0]?.key).toBe('shards');
    const both = master({ DISCLUSTER_TOKEN: 'a', DISCLUSTER_TOKEN_FILE: '/x' });
    expect(!both.ok && both.issues[0]?.key).toBe('token');
    const port = master({ DISCLUSTER_HTTP_PORT: '70000' });
    expect(!port.ok && port.issues[0]?.key).toBe('http_port');
  });

  it('master: failed_cluster_action is move (default) or hold; anything else names the key', () => {
    expect(master({}).ok && master({})).toMatchObject({ config: { failed_cluster_action: 'move' } });
    expect(master({ DISCLUSTER_FAILED_CLUSTER_ACTION: 'hold' })).toMatchObject({
      ok: true,
      config: { failed_cluster_action: 'hold' },
    });
    const bad = master({ 'discluster-master': JSON.stringify({ failed_cluster_action: 'restart' }) });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.issues).toEqual([{ key: 'failed_cluster_action', message: "must be 'move' or 'hold'" }]);
    expect(formatConfigIssues('discluster-master', bad.issues)).toContain('failed_cluster_action');
  });

  it('never puts a value into an error message (a token must not leak through a typo)', () => {
    const result = master({
      DISCLUSTER_TOKEN: 'secret-token-value',
      DISCLUSTER_SHARDS: 'secret-token-value',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatConfigIssues('discluster-master', result.issues)).not.toContain('secret-token-value');
  });
});

describe('source_addresses (CONTROL)', () => {
  const issuesOf = (value: string) => {
    const result = control({ DISCLUSTER_SOURCE_ADDRESSES: value });
    return result.ok ? [] : result.issues;
  };

  it('reads comma-separated IPv4/IPv6 literals; unset or empty is none', () => {
    const result = control({ DISCLUSTER_SOURCE_ADDRESSES: ' 10.0.0.5, 10.0.0.6 ,2001:db8::7' });
    expect(result.ok && result.config.source_addresses).toEqual(['10.0.0.5', '10.0.0.6', '2001:db8::7']);
    const unset = control({});
    expect(unset.ok && unset.config.source_addresses).toEqual([]);
    const empty = control({ DISCLUSTER_SOURCE_ADDRESSES: '' });
    expect(empty.ok && empty.config.source_addresses).toEqual([]);
  });

  it('refuses a value that is not an address, naming the key and the entry but not the value', () => {
    const issues = issuesOf('10.0.0.5,my-secret-token,10.0.0.256');
    expect(issues.map((issue) => issue.key)).toEqual(['source_addresses', 'source_addresses']);
    expect(issues.map((issue) => issue.message)).toEqual([
      'entry 2 is not an IPv4 or IPv6 address literal',
      'entry 3 is not an IPv4 or IPv6 address literal',
    ]);
    expect(JSON.stringify(issues)).not.toContain('my-secret-token');
    expect(issuesOf('10.0.0.5,,10.0.0.6')[0]?.message).toBe('entry 2 is empty');
  });

  it('refuses an address listed twice, however it is written', () => {
    expect(issuesOf('10.0.0.5,10.0.0.5')).toEqual([
      { key: 'source_addresses', message: '10.0.0.5 is listed twice' },
    ]);
    expect(issuesOf('2001:db8::7,2001:DB8:0:0:0:0:0:7')).toEqual([
      { key: 'source_addresses', message: '2001:DB8:0:0:0:0:0:7 is listed twice' },
    ]);
  });
});

describe('source address helpers', () => {
  const interfaces = {
    lo: [
      { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', internal: true },
      { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', internal: true },
    ],
    eth0: [
      { address: '203.0.113.10', netmask: '255.255.255.0', family: 'IPv4', internal: false },
      { address: '2001:db8::10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false },
    ],
  } as unknown as Parameters<typeof sourceAddressesNotOnHost>[1];

  it('finds the addresses a host does not have (its interfaces, and loopback ranges)', () => {
    expect(
      sourceAddressesNotOnHost(
        ['203.0.113.10', '203.0.113.11', '2001:DB8:0::10', '127.0.0.7', 'fe80::1%eth0', '198.51.100.1'],
        interfaces,
      ),
    ).toEqual(['203.0.113.11', '198.51.100.1']);
  });

  it('gives cluster id the address at id % count', () => {
    const addresses = ['10.0.0.5', '10.0.0.6', '10.0.0.7'];
    expect([0, 1, 2, 3, 4, 7].map((id) => sourceAddressOf(addresses, id))).toEqual([
      '10.0.0.5',
      '10.0.0.6',
      '10.0.0.7',
      '10.0.0.5',
      '10.0.0.6',
      '10.0.0.6',
    ]);
    expect(sourceAddressOf([], 3)).toBeUndefined();
    expect(canonicalAddress('0:0:0:0:0:0:0:1')).toBe('::1');
  });
});
