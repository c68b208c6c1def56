/**
 * What the `/metrics` tests share (not a test file): a small parser of the Prometheus text
 * exposition format (version 0.0.4), and the shard values the test's CONTROLs (FakeHost) report,
 * each derived from the shard's id so every exported value is checkable.
 */
import { SHARD_STATES, type ClusterReport } from 'discluster-protocol';
import type { FakeHost } from './fakeHost';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** Metric family name → its `# TYPE`. */
  readonly types: ReadonlyMap<string, string>;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`not a sample value: ${text}`);
  return value;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_PAIR.lastIndex = 0;
  while (LABEL_PAIR.lastIndex < text.length) {
    const match = LABEL_PAIR.exec(text);
    if (!match) throw new Error(`malformed labels: {${text}}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_all, char: string) => (char === 'n' ? '\n' : char));
  }
  return labels;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`malformed sample line: ${line}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[2] ?? ''), value: parseValue(match[3]!) });
  }
  // Every sample belongs to a declared family.
  for (const sample of samples) if (!types.has(sample.name)) throw new Error(`no # TYPE for ${sample.name}`);
  return { samples, types };
}

/** The samples of `name` whose labels include `labels`. */
export function find(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The one value of `name` with `labels`, or undefined if absent (several is a failure). */
export function value(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = find(exposition, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** What a shard reports in these tests: every value derived from its id, so each is checkable. */
export function reportFor(id: number) {
  return {
    id,
    state: SHARD_STATES[id % SHARD_STATES.length]!,
    // Shard 3 has not had a heartbeat ACK yet: its latency must be absent, not -1.
    ping: id === 3 ? -1 : 10 + id,
    guilds: 2 * id + 1,
    events: 100 * id + 7,
    waitingReason: null,
    lastCloseCode: null,
  };
}

/** Makes `fake` report {@link reportFor}'s values for its shards, and `clusterId % 3 + 1` restarts. */
export function reportChosenValues(fake: FakeHost): void {
  fake.clusters = fake.clusters.map((cluster): ClusterReport => ({
    ...cluster,
    restarts: (cluster.clusterId % 3) + 1,
    shards: cluster.shardIds.map(reportFor),
  }));
}
