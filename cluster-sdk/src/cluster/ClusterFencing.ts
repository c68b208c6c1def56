import type { NatsConnection } from '@nats-io/transport-node';
import type { ClusterShards } from './ClusterShards.js';
import type { ResolvedClusterSettings } from './ClusterOptions.js';
import { ControlKeepalive } from './ControlKeepalive.js';
import { effectiveFenceAfterMs } from './fleetMode.js';
import { NatsLiveness } from './NatsLiveness.js';
import { ShardFence, type ShardFenceHost } from './ShardFence.js';

/** What fencing needs from its cluster. */
export interface ClusterFencingHost extends Pick<
  ShardFenceHost,
  'isStopping' | 'confirm' | 'onFenced' | 'onRevoked' | 'debug' | 'error'
> {
  readonly settings: ResolvedClusterSettings;
  /** The shards to close and reconnect (null before `start()` has built them). */
  readonly shards: () => ClusterShards | null;
  /** The shards may serve again; CONTROL's keepalive watch has already counted it as a keepalive. */
  readonly onUnfenced: () => void;
}

/**
 * When this cluster's shards must stop serving, and when they may serve again (Promise 2): the fence
 * time in force, the NATS round trips and CONTROL's keepalives that trip it, and the
 * {@link ShardFence} that closes and reconnects the shards.
 */
export class ClusterFencing {
  /** The fence time in force: the own setting, lowered by CONTROL's `fenceAfterMs` in a fleet. */
  #afterMs: number;
  readonly #host: ClusterFencingHost;
  readonly #fence: ShardFence;
  /** Fleet: CONTROL's keepalives; silence for the fence time fences like CONTROL's `fence`. */
  readonly #keepalive: ControlKeepalive;
  #liveness: NatsLiveness | null = null;

  public constructor(host: ClusterFencingHost) {
    this.#host = host;
    this.#afterMs = host.settings.fenceAfterMs;
    this.#fence = new ShardFence({
      fenceAfterMs: () => this.#afterMs,
      retryMs: host.settings.statusIntervalMs,
      isStopping: host.isStopping,
      natsLost: () => this.#liveness?.isLost ?? false,
      hasFatalShard: () => host.shards()?.hasFatal ?? false,
      markFenced: () => host.shards()?.markFenced(),
      closeShards: async (reason) => host.shards()?.closeForResume(reason),
      reconnectShards: async () => host.shards()?.connect(),
      confirm: host.confirm,
      onFenced: host.onFenced,
      onUnfenced: () => {
        // CONTROL just confirmed the leases: that counts as a keepalive (if they are watched).
        this.#keepalive.vouched();
        host.onUnfenced();
      },
      onRevoked: host.onRevoked,
      debug: host.debug,
      error: host.error,
    });
    this.#keepalive = new ControlKeepalive({
      fenceAfterMs: () => this.#afterMs,
      onSilent: (silentMs) => void this.#fence.controlSilent(silentMs),
    });
  }

  public get afterMs(): number {
    return this.#afterMs;
  }

  public get fenced(): boolean {
    return this.#fence.fenced;
  }

  public get revoked(): boolean {
    return this.#fence.revoked;
  }

  /** True once CONTROL's keepalives are watched (see ControlKeepalive). */
  public get watchingKeepalives(): boolean {
    return this.#keepalive.armed;
  }

  /** Fleet: the fence time follows CONTROL's `fenceAfterMs` (never above the own setting). */
  public followControl(fromControl: number | undefined): void {
    const { fenceAfterMs: own, fenceAfterMsSet } = this.#host.settings;
    const afterMs = effectiveFenceAfterMs(own, fromControl, fenceAfterMsSet);
    if (afterMs === this.#afterMs) return;
    this.#host.debug(
      `fence time now ${afterMs} ms (own setting ${own} ms, CONTROL's ${fromControl ?? 'none'})`,
    );
    this.#afterMs = afterMs;
    this.#liveness?.setLostAfterMs(afterMs);
    this.#keepalive.fenceTimeChanged();
  }

  /** Armed from the assignment: a CONTROL that dies before its first keepalive renews nothing. */
  public armKeepalives(): void {
    this.#keepalive.arm();
  }

  /** CONTROL renewed the leases. */
  /** CONTROL's keepalive, vouching for a renewal sent at `renewedAt` (wall clock; absent: now). */
  public keepaliveReceived(renewedAt?: number): void {
    this.#keepalive.received(renewedAt);
  }

  /** CONTROL could not renew the leases: close as on a NATS loss, then ask CONTROL at once. */
  public ordered(reason: string): void {
    void this.#fence.ordered(reason);
  }

  /** Fences when `nc` stops answering round trips for the fence time; unfences when it answers again. */
  public watchNats(nc: NatsConnection): void {
    this.#liveness = new NatsLiveness(nc, {
      lostAfterMs: this.#afterMs,
      onLost: () => void this.#fence.lost(),
      onRestored: () => void this.#fence.restored(),
    });
    this.#liveness.start();
  }

  /** Stops watching; {@link settled} then waits for a fence or unfence under way. */
  public stop(): void {
    this.#liveness?.stop();
    this.#keepalive.stop();
  }

  public settled(): Promise<void> {
    return this.#fence.settled();
  }
}
