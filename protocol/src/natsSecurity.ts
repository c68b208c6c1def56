import {
  budgetBucket,
  guildSnapshotBucket,
  handoverBucket,
  restBucket,
  identifyBucket,
  identifyWaitersBucket,
  leaderBucket,
  leaseBucket,
  masterBucket,
  sessionBucket,
  validateBotNamespace,
} from './kv.js';
import { fleetSubjects, handoverSubjects, ipcSubjects } from './subjects.js';

/**
 * The NATS security contract (docs/nats-security.md): the `nats_*` settings every process connects
 * with, and the least-privilege permission template per role, built from the same subject and
 * bucket builders the processes use. Connecting (the plaintext warning, explained refusals, the
 * retry loop) is discluster-runtime's natsConnect.ts.
 */

/** The `nats_*` settings every Discluster process connects with. */
export interface NatsSettings {
  readonly nats_url: readonly string[];
  readonly nats_token?: string | undefined;
  readonly nats_user?: string | undefined;
  readonly nats_pass?: string | undefined;
  readonly nats_creds?: string | undefined;
  readonly nats_tls_ca?: string | undefined;
  readonly nats_tls_cert?: string | undefined;
  readonly nats_tls_key?: string | undefined;
}

// ---- least-privilege permissions --------------------------------------------------------------------

/** The NATS users of one fleet: each process kind connects as its own. */
export type NatsRole = 'master' | 'control' | 'cluster' | 'operator' | 'events';

export const NATS_ROLES: readonly NatsRole[] = ['master', 'control', 'cluster', 'operator', 'events'];

/**
 * The inbox prefix (reply subjects) of MASTER, CONTROL and the clusters of one bot. Each role
 * receives its replies (requests, KV reads, watches) under its own prefix, so a role is granted
 * `subscribe` on its own inboxes only and cannot read another role's replies (e.g. a cluster
 * cannot read MASTER's plan as it comes back from KV). All are under `_INBOX.`, so an unrestricted
 * `_INBOX.>` grant keeps working.
 */
export function natsInboxPrefix(bot: string, role: Exclude<NatsRole, 'operator' | 'events'>): string {
  return `_INBOX.discluster.${validateBotNamespace(bot)}.${role}`;
}

/** One role's nats-server permissions. */
export interface NatsRolePermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** `allow_responses`: may answer requests it received (on their reply subject) and nothing else there. */
  readonly allowResponses: boolean;
}

/** What a role does with one KV bucket. */
interface KvUse {
  /** Get entries, watch, list keys (consumers). */
  readonly read?: boolean;
  /** Put, create, update, delete entries. */
  readonly write?: boolean;
  /** Create the bucket if it does not exist. */
  readonly create?: boolean;
  /** Change the bucket's configuration (MASTER sets the TTL of the buckets it owns). */
  readonly configure?: boolean;
}

/** JetStream API and KV subjects for one use of a KV bucket (stream `KV_<bucket>`). */
function kvSubjects(bucket: string, use: KvUse): string[] {
  const stream = `KV_${bucket}`;
  const subjects = [`$JS.API.STREAM.INFO.${stream}`];
  if (use.read)
    subjects.push(
      `$JS.API.STREAM.MSG.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}.>`,
      `$JS.API.CONSUMER.CREATE.${stream}`,
      `$JS.API.CONSUMER.CREATE.${stream}.>`,
      `$JS.API.CONSUMER.INFO.${stream}.>`,
      `$JS.API.CONSUMER.DELETE.${stream}.>`,
    );
  if (use.write) subjects.push(`$KV.${bucket}.>`);
  if (use.create) subjects.push(`$JS.API.STREAM.CREATE.${stream}`);
  if (use.configure) subjects.push(`$JS.API.STREAM.UPDATE.${stream}`);
  return subjects;
}

const OWN: KvUse = { read: true, write: true, create: true, configure: true };
const SHARED: KvUse = { read: true, write: true, create: true };

/**
 * The least-privilege permissions of each role of bot `bot`:
 * - master: commands to hosts (`fleet.host.*.cmd`, `fleet.cmd.all`) — the only role that may send
 *   them; receives announces, heartbeats, events and operator requests; owns the leader, plan and
 *   lease buckets.
 * - control: announces, heartbeats and events; receives its commands and status polls; keeps the
 *   shard leases.
 * - cluster: cluster-to-cluster IPC; identify slots, waiters, budget and sessions; a reshard's
 *   handover steps and bucket; the shared REST limits; guild snapshots. No fleet subject, no lease or MASTER bucket.
 * - operator (the `discluster` CLI): requests to MASTER, status polls to CONTROLs, reads the plan,
 *   and listens to the fleet events (`nats sub 'discluster.v1.<bot>.fleet.event.>'`). Uses the
 *   default inbox, so it may subscribe `_INBOX.>`: give it only to operators.
 * - events (your own tooling that handles the events, issue 17): subscribes to the fleet events
 *   (`cluster.failed`, `fatal`) and nothing else; publishes nothing, so it can neither command nor
 *   forge an event, and sees no heartbeat, command, reply or bucket.
 */
export function natsPermissions(bot: string): Record<NatsRole, NatsRolePermissions> {
  const fleet = fleetSubjects(bot);
  // `discluster.v1.<bot>.fleet.host.*`: the host id is one token, a wildcard here.
  const anyHost = fleet.allHeartbeats.slice(0, -'.heartbeat'.length);
  const ipc = `${ipcSubjects(bot).broadcast.slice(0, -'.all'.length)}.>`;
  const jsInfo = '$JS.API.INFO';
  const handover = handoverSubjects(bot);
  return {
    master: {
      publish: [
        `${anyHost}.cmd`,
        fleet.broadcast,
        // Status polls: is the known CONTROL of a host id still running (a second one is refused)?
        fleet.hostStatus,
        // The steps of a reshard's handover, to each cluster.
        handover.all,
        jsInfo,
        ...kvSubjects(leaderBucket(bot), OWN),
        ...kvSubjects(masterBucket(bot), OWN),
        // MASTER sets the lease bucket's TTL (lease_ms) but never reads or writes a lease.
        ...kvSubjects(leaseBucket(bot), { create: true, configure: true }),
      ],
      subscribe: [
        fleet.allHostAnnounces,
        fleet.announce,
        fleet.allHeartbeats,
        fleet.allEvents,
        fleet.master,
        `${natsInboxPrefix(bot, 'master')}.>`,
      ],
      allowResponses: true,
    },
    // One user for every host; natsHostPermissions() names one host's subjects instead.
    control: {
      publish: [
        fleet.allHostAnnounces,
        fleet.announce,
        fleet.allHeartbeats,
        fleet.allEvents,
        jsInfo,
        ...kvSubjects(leaseBucket(bot), SHARED),
      ],
      subscribe: [
        `${anyHost}.cmd`,
        fleet.broadcast,
        fleet.hostStatus,
        `${natsInboxPrefix(bot, 'control')}.>`,
      ],
      allowResponses: true,
    },
    cluster: {
      publish: [
        ipc,
        jsInfo,
        ...kvSubjects(identifyBucket(bot), SHARED),
        ...kvSubjects(identifyWaitersBucket(bot), SHARED),
        ...kvSubjects(budgetBucket(bot), SHARED),
        ...kvSubjects(sessionBucket(bot), SHARED),
        ...kvSubjects(handoverBucket(bot), SHARED),
        // cluster.rest's shared rate limits.
        ...kvSubjects(restBucket(bot), SHARED),
        // Guild snapshots, replayed after a resume.
        ...kvSubjects(guildSnapshotBucket(bot), SHARED),
      ],
      subscribe: [ipc, handover.all, `${natsInboxPrefix(bot, 'cluster')}.>`],
      allowResponses: true,
    },
    operator: {
      publish: [fleet.master, fleet.hostStatus, jsInfo, ...kvSubjects(masterBucket(bot), { read: true })],
      subscribe: [fleet.allEvents, '_INBOX.>'],
      allowResponses: false,
    },
    events: {
      publish: [],
      subscribe: [fleet.allEvents],
      allowResponses: false,
    },
  };
}

/**
 * The permissions of the CONTROL of host `hostId` alone (issue 13 h): it may announce, heartbeat
 * and publish events only on subjects naming its own host id, and receive only its own commands,
 * so one machine's credentials cannot speak for another (MASTER checks each message's `hostId`
 * against the subject). Leases stay shared: their keys are per shard, and MASTER moves shards
 * between hosts. Use one user per host instead of the shared `control` user.
 */
export function natsHostPermissions(bot: string, hostId: string): NatsRolePermissions {
  const fleet = fleetSubjects(bot);
  return {
    publish: [
      fleet.hostAnnounce(hostId),
      fleet.heartbeat(hostId),
      fleet.hostClusterFailed(hostId),
      fleet.hostFatal(hostId),
      '$JS.API.INFO',
      ...kvSubjects(leaseBucket(bot), SHARED),
    ],
    subscribe: [
      fleet.commands(hostId),
      fleet.broadcast,
      fleet.hostStatus,
      `${natsInboxPrefix(bot, 'control')}.>`,
    ],
    allowResponses: true,
  };
}

/** How a user authenticates: a password (plain or bcrypt, `nats server passwd`) or an nkey. */
export type NatsUserIdentity =
  { readonly user: string; readonly password: string } | { readonly nkey: string };

/**
 * A user of one role, for {@link renderNatsAuthorization}; a `control` user with `hostId` gets that
 * host's permissions only ({@link natsHostPermissions}).
 */
export type NatsRoleUser = NatsUserIdentity & { readonly role: NatsRole; readonly hostId?: string };

/** A user with permissions of its own (e.g. a monitoring tool), for {@link renderNatsAuthorization}. */
export type NatsCustomUser = NatsUserIdentity & {
  readonly comment: string;
  readonly permissions: NatsRolePermissions;
};

const quote = (text: string): string => JSON.stringify(text);

/**
 * The permissions block of one role, in nats-server configuration syntax. A role that publishes
 * nothing (`events`) is denied `>` rather than given an empty allow list.
 */
export function renderNatsPermissions(permissions: NatsRolePermissions, indent = ''): string {
  const list = (items: readonly string[]) => items.map((item) => `${indent}    ${quote(item)}`).join('\n');
  return [
    `${indent}permissions: {`,
    ...(permissions.publish.length === 0
      ? [`${indent}  publish: { deny: [ ">" ] }`]
      : [`${indent}  publish: { allow: [`, list(permissions.publish), `${indent}  ] }`]),
    `${indent}  subscribe: { allow: [`,
    list(permissions.subscribe),
    `${indent}  ] }`,
    ...(permissions.allowResponses ? [`${indent}  allow_responses: true`] : []),
    `${indent}}`,
  ].join('\n');
}

/**
 * An `authorization { users = [...] }` block for nats-server: one entry per user, with the
 * permissions of its role for bot `bot` (or its own). Several bots on one NATS: one user per role
 * and bot.
 */
export function renderNatsAuthorization(
  bot: string,
  users: ReadonlyArray<NatsRoleUser | NatsCustomUser>,
): string {
  const permissions = natsPermissions(bot);
  const entries = users.map((entry) => {
    const identity =
      'nkey' in entry
        ? [`      nkey: ${quote(entry.nkey)}`]
        : [`      user: ${quote(entry.user)}`, `      password: ${quote(entry.password)}`];
    const [comment, rights] = !('role' in entry)
      ? [entry.comment, entry.permissions]
      : entry.role === 'control' && entry.hostId !== undefined
        ? [`control of host ${entry.hostId}`, natsHostPermissions(bot, entry.hostId)]
        : [entry.role, permissions[entry.role]];
    return [`    # ${comment}`, '    {', ...identity, renderNatsPermissions(rights, '      '), '    }'].join(
      '\n',
    );
  });
  return ['authorization: {', '  users: [', entries.join('\n'), '  ]', '}', ''].join('\n');
}
