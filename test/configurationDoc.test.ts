import fs from 'node:fs';
import path from 'node:path';
import {
  CommonConfigShape,
  ControlConfigSchema,
  MasterConfigSchema,
  loadModuleConfig,
  type ConfigSources,
} from 'discluster-protocol';
import { describe, expect, it } from 'vitest';

/**
 * docs/configuration.md lists every key of both modules' schemas (protocol/src/config.ts) in the
 * section of the module that reads it, with its environment form and, where it is a plain value,
 * the schema's own default. A key added to a schema without a line here fails this test.
 */

const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'configuration.md'), 'utf8');

interface Row {
  readonly key: string;
  readonly env: string;
  readonly defaultCell: string;
}

/** The rows of the first table under the heading `## <title>`. */
function section(title: string): Row[] {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no section "## ${title}" in docs/configuration.md`);
  const end = doc.indexOf('\n## ', start + 1);
  const rows: Row[] = [];
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const key = /^`([a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!key) continue;
    rows.push({ key, env: cells[2] ?? '', defaultCell: cells[3] ?? '' });
  }
  return rows;
}

const common = Object.keys(CommonConfigShape).sort();
const masterOnly = Object.keys(MasterConfigSchema.shape)
  .filter((key) => !common.includes(key))
  .sort();
const controlOnly = Object.keys(ControlConfigSchema.shape)
  .filter((key) => !common.includes(key))
  .sort();

/** Each schema's defaults, as text (`nats_url` is a list, joined as it is written). */
function defaults(
  schema: Parameters<typeof loadModuleConfig>[0],
  moduleName: string,
): Record<string, string> {
  const sources: ConfigSources = { moduleName, env: {} };
  const result = loadModuleConfig(schema, sources);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return Object.fromEntries(
    Object.entries(result.config as Record<string, unknown>).map(([key, value]) => [
      key,
      Array.isArray(value) ? value.join(',') : String(value),
    ]),
  );
}

const sections = [
  { title: 'Both modules', keys: common, defaults: defaults(ControlConfigSchema, 'discluster-control') },
  {
    title: 'discluster-master',
    keys: masterOnly,
    defaults: defaults(MasterConfigSchema, 'discluster-master'),
  },
  {
    title: 'discluster-control',
    keys: controlOnly,
    defaults: defaults(ControlConfigSchema, 'discluster-control'),
  },
];

describe('docs/configuration.md', () => {
  it.each(sections)('$title: lists exactly the keys of the schema', ({ title, keys }) => {
    expect(
      section(title)
        .map((row) => row.key)
        .sort(),
    ).toEqual(keys);
  });

  it.each(sections)('$title: gives each key its DISCLUSTER_<KEY> form', ({ title }) => {
    for (const row of section(title))
      expect(row.env, row.key).toBe(`\`DISCLUSTER_${row.key.toUpperCase()}\``);
  });

  it.each(sections)('$title: shows the schema default where it is a plain value', ({ title, defaults }) => {
    for (const row of section(title)) {
      const literal = /^`([^`]+)`$/.exec(row.defaultCell)?.[1];
      const expected = defaults[row.key];
      if (literal !== undefined) expect(literal, row.key).toBe(expected);
      // No default in the schema: the doc says so with a dash (host_id and cores describe theirs).
      else if (row.defaultCell === '—') expect(expected, row.key).toBeUndefined();
    }
  });
});
