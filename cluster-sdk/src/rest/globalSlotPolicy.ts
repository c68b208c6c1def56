/**
 * The fleet's global limit as `perSecond` slots: a request claims a slot at the moment it is sent
 * and a slot is claimed at most once per `spacingMs` (one second plus a margin for network jitter).
 * No 1-second interval can then hold more than `perSecond` requests, whatever the phase of Discord's
 * own window, and at saturation every slot is used once per spacing: `perSecond × 1000 / spacingMs`
 * requests a second. A claim records when its request will be sent, never earlier than a spacing after
 * the slot's previous use, and the request is not sent before that time.
 */

/** A slot as this process last saw it. */
export interface GlobalSlotView {
  readonly slot: number;
  /** When a request was last sent on it (epoch ms); 0 if never. */
  readonly at: number;
}

export type GlobalSlotChoice =
  /** Claim this slot now, for a request sent at `sendAt` (now, or up to the lead later). */
  | { readonly kind: 'claim'; readonly slot: number; readonly sendAt: number }
  /** No slot frees up within the lead: the first one can be claimed then. */
  | { readonly kind: 'wait'; readonly until: number };

/**
 * A slot to claim. A slot is claimable `leadMs` before it frees up, for a request sent when it
 * does (`sendAt`): the claim's round trips to NATS then overlap the end of the slot's spacing
 * instead of adding to it. The slot is chosen at random among those free now (else among those
 * freeing up within the lead), so processes that claim at the same moment mostly pick different
 * slots.
 */
export function chooseGlobalSlot(
  slots: readonly GlobalSlotView[],
  now: number,
  spacingMs: number,
  random: () => number,
  leadMs = 0,
): GlobalSlotChoice {
  if (slots.length === 0) throw new RangeError('no global slots');
  const freeNow: GlobalSlotView[] = [];
  const freeSoon: GlobalSlotView[] = [];
  let firstFree = Number.POSITIVE_INFINITY;
  for (const view of slots) {
    const freeAt = view.at + spacingMs;
    if (freeAt <= now) freeNow.push(view);
    else if (freeAt - leadMs <= now) freeSoon.push(view);
    else firstFree = Math.min(firstFree, freeAt);
  }
  const pool = freeNow.length > 0 ? freeNow : freeSoon;
  if (pool.length === 0) return { kind: 'wait', until: firstFree - leadMs };
  const chosen = pool[Math.min(pool.length - 1, Math.floor(random() * pool.length))] as GlobalSlotView;
  return { kind: 'claim', slot: chosen.slot, sendAt: Math.max(now, chosen.at + spacingMs) };
}
