import type { Term } from '../leadership/term.js';
import { heldAtFloor, hostTransitions, natsTransitions } from './alertPolicy.js';

/**
 * The alerts of one term that come from watching rather than from an event: a host lost or back,
 * shards held at the session-start floor, a NATS node no longer advertised or back. Checked on
 * the term's monitor tick, so only the leader alerts; each fires on a change, not while it lasts.
 */
export class AlertWatch {
  /** Hosts this term saw lost (a term starts believing every host online, as its registry does). */
  private readonly lost = new Set<string>();
  private floorHeld = false;
  /** Every client URL the NATS cluster advertised during this term, and those missing now. */
  private readonly natsKnown = new Set<string>();
  private readonly natsGone = new Set<string>();

  public constructor(private readonly term: Term) {}

  public check(): void {
    const term = this.term;
    if (term.ended) return;
    this.checkHosts();
    this.checkSessionFloor();
    this.checkNats();
  }

  private checkHosts(): void {
    const term = this.term;
    const plan = term.plan;
    const ids = new Set([
      ...term.registry.all().map((host) => host.facts.hostId),
      ...Object.keys(plan?.hosts ?? {}),
      ...Object.keys(plan?.reshard?.hosts ?? {}),
    ]);
    const isLost = new Map([...ids].map((hostId) => [hostId, term.registry.isLost(hostId)]));
    const { lost, back } = hostTransitions(this.lost, isLost);
    for (const hostId of lost) {
      this.lost.add(hostId);
      const shards = [...(plan?.hosts[hostId] ?? []), ...(plan?.reshard?.hosts[hostId] ?? [])].reduce(
        (total, cluster) => total + cluster.shardIds.length,
        0,
      );
      term.alerts.send({ kind: 'host-lost', hostId, shards });
    }
    for (const hostId of back) {
      this.lost.delete(hostId);
      term.alerts.send({ kind: 'host-back', hostId });
    }
  }

  private checkSessionFloor(): void {
    const term = this.term;
    const held = heldAtFloor(term.registry.online().map((host) => host.facts));
    if (held && !this.floorHeld) term.alerts.send({ kind: 'session-floor', ...held });
    this.floorHeld = held !== null;
  }

  private checkNats(): void {
    const term = this.term;
    // The cluster's client URLs as the connected server gossips them (INFO `connect_urls`; empty on
    // one server, and on a cluster with `no_advertise`, where this check sees nothing).
    const advertised = term.nc.info?.connect_urls ?? [];
    if (advertised.length === 0 && this.natsKnown.size === 0) return;
    const { lost, back } = natsTransitions(this.natsKnown, this.natsGone, advertised);
    for (const url of advertised) this.natsKnown.add(url);
    for (const url of lost) this.natsGone.add(url);
    for (const url of back) this.natsGone.delete(url);
    if (lost.length > 0)
      term.alerts.send({ kind: 'nats-node-lost', urls: lost, remaining: advertised.length });
    if (back.length > 0)
      term.alerts.send({ kind: 'nats-node-back', urls: back, remaining: advertised.length });
  }
}
