// The last resort of a bench: 'exit' handlers must be synchronous, so every child still tracked
// when the bench process exits gets a SIGKILL, by pid.

/** Registers that handler for `children`, a live collection of `{ pid }` handles. */
export function killOnExit(children) {
  process.on('exit', () => {
    for (const handle of children) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}
