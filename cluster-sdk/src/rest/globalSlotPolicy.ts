/**
 * The fleet's global limit as `perSecond` slots: a request claims a slot at the moment it is sent
 * and a slot is claimed at most once per `spacingMs` (one second plus a margin for network jitter).
 * No 1-second interval can then hold more than `perSecond` requests, whatever the phase of Discord's
 * own window, and at saturation every slot is used once per spacing: `perSecond × 1000 / spacingMs`
 * requests a second. Claiming when sending, not ahead, keeps a late timer from bunching requests.
 */

/** A slot as this process last saw it. */
export interface GlobalSlotView {
  readonly slot: number;
  /** When a request was last sent on it (epoch ms); 0 if never. */
  readonly at: number;
}

export type GlobalSlotChoice =
  /** Claim this slot now. */
  | { readonly kind: 'claim'; readonly slot: number }
  /** Every slot was used less than `spacingMs` ago: the first frees up then. */
  | { readonly kind: 'wait'; readonly until: number };

/**
 * A free slot, chosen at random among the free ones so processes that claim at the same moment
 * mostly pick different slots; or when the first one frees up.
 */
export function chooseGlobalSlot(
  slots: readonly GlobalSlotView[],
  now: number,
  spacingMs: number,
  random: () => number,
): GlobalSlotChoice {
  if (slots.length === 0) throw new RangeError('no global slots');
  const free: number[] = [];
  let firstFree = Number.POSITIVE_INFINITY;
  for (const view of slots) {
    const freeAt = view.at + spacingMs;
    if (freeAt <= now) free.push(view.slot);
    else firstFree = Math.min(firstFree, freeAt);
  }
  if (free.length === 0) return { kind: 'wait', until: firstFree };
  return {
    kind: 'claim',
    slot: free[Math.min(free.length - 1, Math.floor(random() * free.length))] as number,
  };
}
