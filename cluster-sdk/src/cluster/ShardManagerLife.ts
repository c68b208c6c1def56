/**
 * The life of one @discordjs/ws manager of a cluster: open, closing, closed. A cluster closes its
 * manager to fence or stop and builds a new one to reconnect, because a closed manager's shards
 * can still come back on their own: a shard that @discordjs/ws was about to reconnect (it waits
 * 500 ms after a close from Discord, idle) ignores the destroy and connects when its wait ends.
 * That shard would serve while its cluster is fenced, and beside the shard that replaces it after
 * the fence (Promise 2). So once a manager starts closing, its shards may not open a session, and
 * once it is closed, nothing it reports is heard.
 */
export class ShardManagerLife {
  #phase: 'open' | 'closing' | 'closed' = 'open';
  #markClosed!: () => void;
  /** Resolves once the manager is closed: a connect still waiting on it is over. */
  public readonly closed = new Promise<void>((resolve) => (this.#markClosed = resolve));

  /** False from the moment the manager starts closing: no shard of it may open a session. */
  public get acceptsSessions(): boolean {
    return this.#phase === 'open';
  }

  /** False once the manager is closed: its events (a shard that came back on its own) are not heard. */
  public get heard(): boolean {
    return this.#phase !== 'closed';
  }

  public beginClose(): void {
    if (this.#phase === 'open') this.#phase = 'closing';
  }

  public finishClose(): void {
    this.#phase = 'closed';
    this.#markClosed();
  }
}

/**
 * What a shard of a closing or closed manager gets when it asks for its session to connect: an
 * answer that never comes, so it never connects. (Rejecting would surface as an unhandled
 * rejection inside @discordjs/ws; the pending promise holds no timer and is collected with the shard.)
 */
export function neverAnswered<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}
