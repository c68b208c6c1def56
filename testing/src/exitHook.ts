/**
 * A process 'exit' handler installed the first time the returned function is called (later calls
 * do nothing), so a module adds its safety net only once it has started something to clean up.
 * 'exit' handlers must be synchronous: `cleanup` cannot wait for anything.
 */
export function lazyExitHook(cleanup: () => void): () => void {
  let installed = false;
  return () => {
    if (installed) return;
    installed = true;
    process.on('exit', cleanup);
  };
}
