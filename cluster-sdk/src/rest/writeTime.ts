import type { Dispatcher } from 'undici';
import { undici } from './lazyModules.js';

type Handler = Dispatcher.DispatchHandlers;
/** undici's DecoratorHandler forwards every hook to the handler it wraps (its typings list none). */
type Decorator = new (handler: Handler) => Handler & { onConnect(...args: unknown[]): void };

let writeTimeHandler: (new (handler: Handler, written: (at: number) => void) => Handler) | null = null;

/** The handler class, built once undici is loaded (it is loaded on first use of `cluster.rest`). */
function handlerClass(): new (handler: Handler, written: (at: number) => void) => Handler {
  if (writeTimeHandler) return writeTimeHandler;
  const Base = undici().DecoratorHandler as unknown as Decorator;
  writeTimeHandler = class WriteTimeHandler extends Base {
    readonly #written: (at: number) => void;

    public constructor(handler: Handler, written: (at: number) => void) {
      super(handler);
      this.#written = written;
    }

    public override onConnect(...args: unknown[]): void {
      this.#written(Date.now());
      super.onConnect(...args);
    }
  };
  return writeTimeHandler;
}

/**
 * `dispatcher` (undici's global one when none is given) with a report of when each request's
 * headers are written: undici calls a handler's `onConnect` right before it writes them to the
 * socket (again if it retries the request). A starved process, or a request queued behind others on
 * a busy connection, writes well after `makeRequest` was called; Discord counts it from then.
 */
export function reportingWriteTime(
  dispatcher: Dispatcher | undefined,
  written: (at: number) => void,
): Dispatcher {
  const WriteTimeHandler = handlerClass();
  const base = dispatcher ?? undici().getGlobalDispatcher();
  // A dispatcher of an undici older than 6.11 (set globally by someone else) cannot be composed:
  // its requests are then dated by the limiter's own clock only.
  if (typeof base.compose !== 'function') return base;
  return base.compose(
    (dispatch) => (options, handler) => dispatch(options, new WriteTimeHandler(handler, written)),
  );
}
