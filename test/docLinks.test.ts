import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every relative link in the top-level docs and the package READMEs points to a file of the
 * repository, and every `#anchor` to a heading of its target (GitHub's heading slugs). External
 * links (http, mailto) are not checked: tests run offline.
 */

const root = path.resolve(__dirname, '..');

const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  ...fs
    .readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
  ...['protocol', 'testing', 'discord-sim', 'cluster-sdk', 'pm2-module-control', 'pm2-module-master']
    .map((dir) => `${dir}/README.md`)
    .filter((file) => fs.existsSync(path.join(root, file))),
];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Markdown text without fenced code blocks (their brackets are code, not links). */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of prose(fs.readFileSync(file, 'utf8')).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

function linksOf(file: string): string[] {
  const text = prose(fs.readFileSync(file, 'utf8')).replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1] ?? '');
}

describe('documentation links', () => {
  it.each(DOCS)('%s: every relative link and anchor resolves', (doc) => {
    const broken: string[] = [];
    for (const link of linksOf(path.join(root, doc))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
      const [target = '', anchor] = link.split('#');
      const file =
        target === '' ? path.join(root, doc) : path.resolve(path.dirname(path.join(root, doc)), target);
      if (!fs.existsSync(file)) {
        broken.push(`${link}: no such file`);
        continue;
      }
      if (anchor && fs.statSync(file).isFile() && file.endsWith('.md') && !anchorsOf(file).has(anchor))
        broken.push(`${link}: no heading with anchor #${anchor} in ${path.relative(root, file)}`);
    }
    expect(broken).toEqual([]);
  });

  it('README.md links the architecture doc, which exists', () => {
    expect(linksOf(path.join(root, 'README.md'))).toContain('docs/architecture.md');
    expect(fs.existsSync(path.join(root, 'docs', 'architecture.md'))).toBe(true);
  });
});
