/**
 * Documentation code cannot drift from the code it documents: every `ts` block in
 * cluster-sdk/README.md and in docs/*.md (the "Move your discord.js bot" guide among them) names (in
 * the HTML comment right above it) a file under examples/ that `npx tsc -b` typechecks, and must
 * equal that file. Snippets of other libraries are `js` blocks, which are not checked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');
const README = path.join(ROOT, 'cluster-sdk', 'README.md');
const GUIDE = path.join(ROOT, 'docs', 'move-your-discordjs-bot.md');
/** Every markdown file whose `ts` blocks must be typechecked examples. */
const DOCUMENTS = [
  README,
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => path.join(ROOT, 'docs', name)),
];
const MARKER = /^<!-- typechecked: (examples\/[\w./-]+\.ts) -->$/;

interface Block {
  readonly file: string | null;
  readonly code: string;
  readonly line: number;
}

/** Every fenced `ts` block, with the file named by the marker comment above it (or null). */
function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})(\w*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const end = lines.findIndex((text, j) => j > i && text.startsWith(fence[1]!) && text.trim() === fence[1]);
    if (end === -1) throw new Error(`unclosed code fence at line ${i + 1}`);
    if (fence[2] === 'ts' || fence[2] === 'typescript') {
      let previous = i - 1;
      while (previous >= 0 && lines[previous]!.trim() === '') previous--;
      const marker = previous >= 0 ? MARKER.exec(lines[previous]!.trim()) : null;
      blocks.push({ file: marker?.[1] ?? null, code: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    }
    i = end;
  }
  return blocks;
}

describe('code samples of cluster-sdk/README.md and docs/*.md', () => {
  const blocksOf = (document: string): Block[] => tsBlocks(fs.readFileSync(document, 'utf8'));
  const where = (document: string, block: Block): string =>
    `${path.relative(ROOT, document)} line ${block.line}`;

  it('scan the README and the discord.js guide', () => {
    expect(DOCUMENTS).toContain(README);
    expect(DOCUMENTS).toContain(GUIDE);
  });

  it('include the main sample, examples/readme-sample.ts', () => {
    expect(blocksOf(README).map((block) => block.file)).toContain('examples/readme-sample.ts');
  });

  it("include the guide's discord.js and @discordjs/core bots", () => {
    const files = blocksOf(GUIDE).map((block) => block.file);
    expect(files).toContain('examples/guide-discordjs-bot.ts');
    expect(files).toContain('examples/guide-core-bot.ts');
  });

  it('each name the typechecked file they come from', () => {
    const unnamed = DOCUMENTS.flatMap((document) =>
      blocksOf(document)
        .filter((block) => block.file === null)
        .map((block) => where(document, block)),
    );
    expect(unnamed).toEqual([]);
  });

  it('have no marker without its ts block', () => {
    for (const document of DOCUMENTS) {
      const text = fs.readFileSync(document, 'utf8');
      const markers = text.split('\n').filter((line) => MARKER.test(line.trim())).length;
      const named = tsBlocks(text).filter((block) => block.file !== null).length;
      expect(named, `${path.relative(ROOT, document)}: markers followed by a ts block`).toBe(markers);
    }
  });

  it('each equal the file they name', () => {
    for (const document of DOCUMENTS) {
      for (const block of blocksOf(document)) {
        if (block.file === null) continue;
        const file = fs.readFileSync(path.join(ROOT, block.file), 'utf8');
        expect(block.code, `${where(document, block)} vs ${block.file}`).toBe(file.replace(/\n$/, ''));
      }
    }
  });

  it('only name files inside the typechecked examples project', () => {
    const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'tsconfig.json'), 'utf8')) as {
      include: string[];
    };
    expect(tsconfig.include).toEqual(['**/*.ts']);
    const rootConfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as {
      references: Array<{ path: string }>;
    };
    expect(rootConfig.references).toContainEqual({ path: 'examples' });
  });
});
