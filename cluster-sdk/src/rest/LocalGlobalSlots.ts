import { delay } from '../util/delay.js';
import { chooseGlobalSlot } from './globalSlotPolicy.js';

/**
 * The global limit inside one process, for when the fleet's slots in NATS cannot be reached: this
 * process's share (the fleet's limit divided by its processes, at least 1 a second), with the same
 * spacing rule. Conservative by design: never more than the share, never unlimited.
 */
export class LocalGlobalSlots {
  private readonly at: number[];

  public constructor(
    perSecond: number,
    private readonly spacingMs: number,
  ) {
    this.at = new Array<number>(Math.max(1, Math.floor(perSecond))).fill(0);
  }

  public get perSecond(): number {
    return this.at.length;
  }

  public async take(signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      const choice = chooseGlobalSlot(
        this.at.map((at, slot) => ({ slot, at })),
        now,
        this.spacingMs,
        Math.random,
      );
      if (choice.kind === 'claim') {
        this.at[choice.slot] = now;
        return;
      }
      await delay(choice.until - now, signal);
    }
  }
}
