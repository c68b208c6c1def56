import { describe, expect, it } from 'vitest';
import { DisclusterError, ErrorCode, isDisclusterError } from '../src';

describe('DisclusterError', () => {
  it('every code is a stable DISCLUSTER_ERR_ string and unique', () => {
    const codes = Object.values(ErrorCode);
    for (const code of codes) expect(code).toMatch(/^DISCLUSTER_ERR_[A-Z_]+$/);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('carries code, name, cause and survives the wire', () => {
    const cause = new Error('root');
    const error = new DisclusterError(ErrorCode.Closed, 'closed', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('DisclusterError');
    expect(error.cause).toBe(cause);
    expect(isDisclusterError(error, ErrorCode.Closed)).toBe(true);
    expect(isDisclusterError(error, ErrorCode.InvalidOption)).toBe(false);
    const rebuilt = DisclusterError.fromWire(
      JSON.parse(JSON.stringify(error)) as { code: string; message: string },
    );
    expect(rebuilt.code).toBe(ErrorCode.Closed);
    expect(rebuilt.message).toBe('closed');
  });

  it('keeps an unknown wire code visible', () => {
    const rebuilt = DisclusterError.fromWire({ code: 'SOMETHING_NEW', message: 'hi' });
    expect(rebuilt.code).toBe(ErrorCode.InvalidRecord);
    expect(rebuilt.message).toBe('SOMETHING_NEW: hi');
  });
});
