/** Wakes everyone currently sleeping in {@link delay} with this notifier; a level-free "something changed". */
export class Notifier {
  private readonly listeners = new Set<() => void>();

  /** Wakes every current sleeper (later sleepers are not affected). */
  public notify(): void {
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener();
  }

  /** @internal Registers a one-shot listener; returns its remover. */
  public once(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
