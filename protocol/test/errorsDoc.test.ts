import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
const documented = new Set([...doc.matchAll(/`(DISCLUSTER_ERR_[A-Z_]+)`/g)].map((match) => match[1]!));

describe('docs/errors.md', () => {
  it('documents every error code', () => {
    const missing = Object.values(ErrorCode).filter((code) => !documented.has(code));
    expect(missing, 'codes missing from docs/errors.md').toEqual([]);
  });

  it('documents no code that does not exist', () => {
    const known = new Set<string>(Object.values(ErrorCode));
    expect(
      [...documented].filter((code) => !known.has(code)),
      'stale codes in docs/errors.md',
    ).toEqual([]);
  });
});
