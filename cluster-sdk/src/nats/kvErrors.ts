import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** True if a KV compare-and-set (`create`, `update`, `put`/`delete` with `previousSeq`) lost a race. */
export function isCasConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** A one-line description of any thrown value, for debug events. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
