// Command-line flags of the benches (node:util parseArgs: an unknown flag is an error). Every bench
// takes --quick and --out DIR; its other flags carry numbers and lists as strings.
import { parseArgs } from 'node:util';

/** `{ [name]: { type: 'string' } }` for each name: flags that take a value. */
export function stringFlags(...names) {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }]));
}

/** Parses this process's arguments: --quick, --out DIR and the bench's own `options`. */
export function parseBenchFlags(options) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, ...options },
  });
  return values;
}

/** A comma-separated list of numbers, as `--rates 5000,10000`. */
export function numberList(text) {
  return text.split(',').map((part) => Number(part.trim()));
}
