import type { IncomingMessage } from 'node:http';
import { BodyError, readJsonBody } from '../httpUtil';
import { entityTooLarge, invalidFormBody, invalidJson } from './errors';

/** Largest JSON body the simulator reads; bigger ones are 413 (code 40005), as Discord answers. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

/** Reads a JSON body, answering a wrong content type, bad JSON or an oversized body with Discord's errors. */
export async function readRestBody(request: IncomingMessage): Promise<unknown> {
  const type = request.headers['content-type'];
  const length = Number(request.headers['content-length'] ?? '0');
  if (
    type !== undefined &&
    !/^application\/json\b/i.test(type) &&
    (length > 0 || request.headers['transfer-encoding'])
  ) {
    request.resume();
    // Files (multipart) are not modelled: the simulator reads JSON only.
    throw invalidFormBody(
      [],
      'CONTENT_TYPE_INVALID',
      `Expected "Content-Type" header to be "application/json" (discord-sim takes no files); got "${type.slice(0, 64)}".`,
    );
  }
  try {
    return await readJsonBody(request, MAX_JSON_BODY_BYTES);
  } catch (error) {
    if (error instanceof BodyError) throw error.status === 413 ? entityTooLarge() : invalidJson();
    throw error;
  }
}
