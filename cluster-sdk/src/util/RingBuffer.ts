/**
 * A bounded FIFO: `push` is O(1) and, when full, evicts the oldest item (returned, so the caller
 * can count and report it). Replaces an array whose `shift()` is O(n) per eviction.
 */
export class RingBuffer<T> {
  private items: Array<T | undefined>;
  private head = 0;
  private size = 0;

  public constructor(private readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    // Grows on demand up to the capacity: a large bound costs nothing until it is used.
    this.items = [];
  }

  public get length(): number {
    return this.size;
  }

  /** Appends `item`; returns true when the oldest item had to go to make room. */
  public push(item: T): boolean {
    if (this.size < this.capacity) {
      const index = (this.head + this.size) % this.capacity;
      this.items[index] = item;
      this.size++;
      return false;
    }
    this.items[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    return true;
  }

  /** The items, oldest first. */
  public *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.items[(this.head + i) % this.capacity] as T;
  }

  public toArray(): T[] {
    return [...this];
  }

  public clear(): void {
    this.items = [];
    this.head = 0;
    this.size = 0;
  }
}
