/** Time as MASTER reads it: one object, so tests of pure logic can pass their own. */
export interface Clock {
  /** Monotonic milliseconds (`performance.now()`): for intervals, never compared across hosts. */
  monotonic(): number;
  /** Wall-clock milliseconds since the epoch (`Date.now()`): for records people and other hosts read. */
  wall(): number;
}

export const systemClock: Clock = {
  monotonic: () => performance.now(),
  wall: () => Date.now(),
};
