/** Runs async operations one after another, in call order; each caller gets its own result or error. */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn);
    // The following operation only waits for this one to settle: the error is its caller's,
    // delivered through `next`, not the queue's.
    this.tail = next.then(settled, settled);
    return next;
  }
}

function settled(): void {
  // nothing to pass on: see run()
}
