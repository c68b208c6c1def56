/**
 * A copy of `source` with exactly `keys`: a validated message or record carries more fields than
 * the object made from it may hold (a token, a writer id), and none of those leak through.
 */
export function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Pick<T, K> {
  const picked = {} as Pick<T, K>;
  for (const key of keys) picked[key] = source[key];
  return picked;
}
