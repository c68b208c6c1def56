import net from 'node:net';
import type os from 'node:os';

/**
 * Source addresses (CONTROL's `source_addresses`, seed 000's "each cluster has a separate IP
 * address"): each cluster binds its gateway and REST sockets to one local address of its host, so
 * Discord's per-IP limits (the invalid-request ban, the unauthenticated global limit) and any ban
 * fall on one cluster's address, not on the whole host.
 */

/** The address without a zone (`fe80::1%eth0` → `fe80::1`), written one way (`0:0::1` → `::1`). */
export function canonicalAddress(address: string): string {
  const [bare = '', zone] = address.split('%', 2);
  const family = net.isIP(bare);
  if (family === 0) return address;
  const written = new net.SocketAddress({ address: bare, family: family === 6 ? 'ipv6' : 'ipv4' }).address;
  return zone === undefined ? written : `${written}%${zone}`;
}

/** An IPv4 or IPv6 literal (an IPv6 link-local one may carry its zone: `fe80::1%eth0`). */
export function isIpLiteral(text: string): boolean {
  return net.isIP(text) !== 0;
}

/**
 * The address of cluster `clusterId` among `addresses`: round-robin by cluster id,
 * `addresses[clusterId % addresses.length]`. A cluster keeps its address across restarts, and a
 * host's clusters (consecutive ids in MASTER's plan) spread evenly over the addresses.
 */
export function sourceAddressOf(addresses: readonly string[], clusterId: number): string | undefined {
  if (addresses.length === 0) return undefined;
  return addresses[clusterId % addresses.length];
}

/** The problems of a list of source addresses, each naming the entry (by position or by address). */
export function sourceAddressProblems(addresses: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  addresses.forEach((address, index) => {
    // A value that is not an address is named by its position only: it could be a pasted secret.
    if (address === '') return problems.push(`entry ${index + 1} is empty`);
    if (!isIpLiteral(address))
      return problems.push(`entry ${index + 1} is not an IPv4 or IPv6 address literal`);
    const canonical = canonicalAddress(address);
    if (seen.has(canonical)) problems.push(`${address} is listed twice`);
    seen.add(canonical);
    return undefined;
  });
  return problems;
}

type Interfaces = ReturnType<typeof os.networkInterfaces>;

/**
 * The addresses of `addresses` this host does not have: on none of its interfaces (Node's
 * `os.networkInterfaces()`), and not in a loopback interface's IPv4 range (all of 127.0.0.0/8 is
 * local on Linux). A cluster could not bind its sockets to them.
 */
export function sourceAddressesNotOnHost(addresses: readonly string[], interfaces: Interfaces): string[] {
  const local = new Set<string>();
  const loopbackRanges: Array<{ base: number; mask: number }> = [];
  for (const list of Object.values(interfaces)) {
    for (const entry of list ?? []) {
      local.add(canonicalAddress(entry.address));
      if (entry.internal && entry.family === 'IPv4') {
        const mask = ipv4Number(entry.netmask);
        loopbackRanges.push({ base: (ipv4Number(entry.address) & mask) >>> 0, mask });
      }
    }
  }
  return addresses.filter((address) => {
    const bare = canonicalAddress(address.split('%', 1)[0] ?? '');
    if (local.has(bare)) return false;
    if (net.isIPv4(bare)) {
      const value = ipv4Number(bare);
      if (loopbackRanges.some(({ base, mask }) => (value & mask) >>> 0 === base)) return false;
    }
    return true;
  });
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((value, part) => ((value << 8) | Number(part)) >>> 0, 0);
}
