/** A signal linked to others, plus the cleanup that unlinks it. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Removes the listeners on the source signals (and a deadline's timer): call it when done waiting. */
  dispose(): void;
}

/** A signal that aborts when any of `signals` does, with that signal's reason. */
export function linkSignals(signals: readonly AbortSignal[]): LinkedSignal {
  // AbortSignal.any exists from Node 20.3 but never lets go of its sources early; ours can.
  const controller = new AbortController();
  const cleanups: Array<() => void> = [];
  const dispose = (): void => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  for (const source of signals) {
    if (source.aborted) {
      dispose();
      controller.abort(source.reason);
      break;
    }
    const listener = (): void => {
      dispose();
      controller.abort(source.reason);
    };
    source.addEventListener('abort', listener, { once: true });
    cleanups.push(() => source.removeEventListener('abort', listener));
  }
  return { signal: controller.signal, dispose };
}

/**
 * A signal that aborts `ms` from now with a `TimeoutError` DOMException (what
 * `AbortSignal.timeout` gives), or as soon as one of `linked` aborts, with its reason.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), ...])`: on Node 20 the timeout signal is held
 * only weakly there (its timer and the composite both keep weak references), so a garbage
 * collection before the deadline drops it and the composite never aborts; a fetch to a receiver
 * that never answers then hangs for good. Here the timer holds its controller strongly.
 */
export function deadlineSignal(ms: number, linked: readonly AbortSignal[] = []): LinkedSignal {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')),
    Math.max(0, ms),
  );
  // A deadline never keeps a process alive on its own.
  timer.unref();
  const joined = linkSignals([deadline.signal, ...linked]);
  return {
    signal: joined.signal,
    dispose: () => {
      clearTimeout(timer);
      joined.dispose();
    },
  };
}
