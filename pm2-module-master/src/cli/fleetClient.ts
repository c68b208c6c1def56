import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  HostHeartbeatSchema,
  MasterReplySchema,
  PlanRecordSchema,
  decodeRecord,
  fleetSubjects,
  masterBucket,
  planKey,
  type FleetStatus,
  type MasterReply,
  type MasterRequest,
  type NatsSettings,
  type PlanRecord,
} from 'discluster-protocol';
import { NatsRequestError, natsConnectOptions, openExistingBucket, requestReply } from 'discluster-runtime';
import { buildFleetStatus, type HostSighting } from '../statusView.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The CLI's side of NATS: requests to the leading MASTER, and the CONTROLs' own reports when it is down. */
export class FleetClient {
  private readonly subjects;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly bot: string,
  ) {
    this.subjects = fleetSubjects(bot);
  }

  public static async connect(settings: NatsSettings, bot: string): Promise<FleetClient> {
    try {
      return new FleetClient(
        await connect(natsConnectOptions(settings, { name: 'discluster-cli', mode: 'once' })),
        bot,
      );
    } catch (error) {
      throw new DisclusterError(
        ErrorCode.NatsClosed,
        `cannot connect to NATS at ${settings.nats_url.join(', ')}: ${error instanceof Error ? error.message : String(error)} (check --nats-url and credentials)`,
      );
    }
  }

  public async close(): Promise<void> {
    await this.nc.close();
  }

  /** Asks the leading MASTER; MASTER's own refusals come back as `DisclusterError`s with its code. */
  public async askMaster(request: MasterRequest, timeoutMs: number): Promise<unknown> {
    let reply: MasterReply;
    try {
      reply = await requestReply(this.nc, this.subjects.master, request, MasterReplySchema, timeoutMs);
    } catch (error) {
      if (error instanceof NatsRequestError && error.kind === 'malformed')
        throw new DisclusterError(ErrorCode.InvalidMessage, 'MASTER sent an invalid reply');
      throw new DisclusterError(
        ErrorCode.MasterUnreachable,
        `no MASTER answered on bot "${this.bot}" within ${timeoutMs} ms (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (!reply.ok) throw new DisclusterError(reply.error.code as ErrorCode, reply.error.message);
    return reply.result;
  }

  /** The plan MASTER last stored (readable while MASTER is down). */
  public async storedPlan(): Promise<PlanRecord | null> {
    const kv = await openExistingBucket(this.nc, masterBucket(this.bot), 5_000);
    const entry = await kv?.get(planKey()).catch(() => null);
    if (!entry || entry.operation !== 'PUT') return null;
    const decoded = decodeRecord(PlanRecordSchema, entry.value);
    return decoded.ok ? decoded.value : null;
  }

  /** Status from the CONTROLs themselves (each answers with its heartbeat facts) and the stored plan. */
  public async statusFromControls(waitMs: number): Promise<FleetStatus> {
    const sightings: HostSighting[] = [];
    try {
      const replies = await this.nc.requestMany(this.subjects.hostStatus, encoder.encode('{"v":1}'), {
        maxWait: waitMs,
      });
      for await (const msg of replies) {
        const parsed = HostHeartbeatSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
        if (parsed.success) {
          const { type: _type, ...facts } = parsed.data;
          sightings.push({ facts, online: true });
        }
      }
    } catch {
      // No CONTROL answered: the status lists planned hosts as lost.
    }
    return buildFleetStatus({
      bot: this.bot,
      plan: await this.storedPlan(),
      hosts: sightings,
      masterUp: false,
      source: 'controls',
    });
  }
}
