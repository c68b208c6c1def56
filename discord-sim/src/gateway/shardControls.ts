import type { GatewayConnection } from '../connection';
import { GatewayOpcode } from '../opcodes';
import type { GatewayContext } from './context';

/** Selects sessions for admin actions: a shard id (or every shard), optionally of one shard count. */
export interface ShardSelector {
  readonly shardId: number | 'all';
  readonly shardCount?: number | undefined;
}

/**
 * What the admin API does to live shards: close, drop, reconnect (op 7), invalidate (op 9), ask for a
 * heartbeat (op 1), and turn heartbeat ACKs off or on. Each action returns how many connections it hit.
 */
export class ShardControls {
  /** Whether heartbeats are ACKed, for connections without their own setting. */
  private heartbeatAcks = true;

  public constructor(private readonly gateway: GatewayContext) {}

  public heartbeatAckEnabled(connection: GatewayConnection): boolean {
    return connection.heartbeatAckOverride ?? this.heartbeatAcks;
  }

  /** Without a selector: the default for every connection (dropping per-connection settings). */
  public setHeartbeatAcks(enabled: boolean, selector?: ShardSelector): number {
    const { connections } = this.gateway.registry;
    if (!selector) {
      this.heartbeatAcks = enabled;
      for (const connection of connections) connection.heartbeatAckOverride = null;
      return connections.size;
    }
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.heartbeatAckOverride = enabled;
    return targets.length;
  }

  /** Connections with a session on the selected shard(s). */
  public selectConnections(selector: ShardSelector): GatewayConnection[] {
    const selected: GatewayConnection[] = [];
    for (const connection of this.gateway.registry.connections) {
      const session = connection.session;
      if (!session || !connection.isOpen) continue;
      if (selector.shardId !== 'all' && session.shardId !== selector.shardId) continue;
      if (selector.shardCount !== undefined && session.shardCount !== selector.shardCount) continue;
      selected.push(connection);
    }
    return selected;
  }

  public closeShards(selector: ShardSelector, code: number): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets)
      this.gateway.closeConnection(connection, code, 'Closed by discord-sim admin.');
    return targets.length;
  }

  /** Drops the sockets without a close frame; their sessions stay resumable. */
  public terminateShards(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) {
      const session = connection.session;
      connection.terminate();
      if (session) {
        this.gateway.registry.detach(session, connection);
        this.gateway.registry.scheduleExpiry(session);
      }
    }
    return targets.length;
  }

  public reconnectShards(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.requestReconnect(this.gateway.options.reconnectCloseAfterMs);
    return targets.length;
  }

  public requestHeartbeats(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.sendOp(GatewayOpcode.Heartbeat, null);
    return targets.length;
  }

  /** Sends op 9. Resumable keeps the session (the client RESUMEs on the same socket); otherwise it ends. */
  public invalidateShards(selector: ShardSelector, resumable: boolean): number {
    const { counters, registry } = this.gateway;
    const targets = this.selectConnections(selector);
    for (const connection of targets) {
      const session = connection.session!;
      counters.invalidSessions++;
      registry.detach(session, connection);
      connection.session = null;
      if (resumable) registry.scheduleExpiry(session);
      else registry.end(session);
      connection.sendOp(GatewayOpcode.InvalidSession, resumable);
    }
    return targets.length;
  }
}
