/**
 * README code cannot drift from the code it documents: every `ts` block in cluster-sdk/README.md
 * names (in the HTML comment right above it) a file under examples/ that `npx tsc -b` typechecks,
 * and must equal that file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');
const README = path.join(ROOT, 'cluster-sdk', 'README.md');
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
    if (end === -1) throw new Error(`unclosed code fence at README line ${i + 1}`);
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

describe('cluster-sdk/README.md code samples', () => {
  const blocks = tsBlocks(fs.readFileSync(README, 'utf8'));

  it('include the main sample, examples/readme-sample.ts', () => {
    expect(blocks.map((block) => block.file)).toContain('examples/readme-sample.ts');
  });

  it('each name the typechecked file they come from', () => {
    expect(blocks.filter((block) => block.file === null).map((block) => `README line ${block.line}`)).toEqual(
      [],
    );
  });

  it('each equal the file they name', () => {
    for (const block of blocks) {
      if (block.file === null) continue;
      const file = fs.readFileSync(path.join(ROOT, block.file), 'utf8');
      expect(block.code, `README line ${block.line} vs ${block.file}`).toBe(file.replace(/\n$/, ''));
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
