/**
 * Runs tasks one at a time, in the order they were queued. MASTER's plan changes and host commands
 * go through one queue for the whole process, so a task of an ended term still finishes before a
 * new term's first task starts.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it; its failure does not stop the queue. */
  public run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
