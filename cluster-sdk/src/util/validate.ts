import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';

/** Throws `DISCLUSTER_ERR_INVALID_OPTION` naming the option unless `value` is an integer in `[min, max]`. */
export function integerOption(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `Invalid option ${name}: expected an integer ${range}, got ${String(value)}`,
    );
  }
  return value;
}

/** Throws `DISCLUSTER_ERR_INVALID_OPTION` naming the option unless `value` is one of `allowed`. */
export function oneOfOption<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `Invalid option ${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
