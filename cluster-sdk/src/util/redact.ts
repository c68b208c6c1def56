/**
 * Secrets this process holds (bot tokens, NATS credentials). Every diagnostic the SDK emits or
 * writes passes through {@link redact}, so a secret that slipped into an error message from a
 * dependency is still never logged (Promise 4). Process-wide on purpose: a secret is a secret for
 * every log line of the process, whichever cluster instance received it.
 */
const secrets = new Set<string>();

/** Shorter strings would match ordinary words in messages; no real token or password is this short. */
const MIN_SECRET_LENGTH = 6;

/** The text that replaces a secret. */
export const REDACTED = '[redacted]';

/** Remembers `value` as a secret to strip from every later diagnostic. */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

/** `text` with every registered secret replaced by {@link REDACTED}. */
export function redact(text: string): string {
  let result = text;
  for (const secret of secrets) if (result.includes(secret)) result = result.split(secret).join(REDACTED);
  return result;
}

/** The same error, with secrets removed from its message and stack (in place: callers keep identity). */
export function redactError(error: Error): Error {
  const message = redact(error.message);
  if (message !== error.message) error.message = message;
  if (error.stack !== undefined) {
    const stack = redact(error.stack);
    if (stack !== error.stack) error.stack = stack;
  }
  return error;
}

/** Any thrown value as an Error. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
