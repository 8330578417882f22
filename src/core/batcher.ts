/**
 * Group commit. Callers hand in one item each and wait for their own outcome; items that arrive
 * while a flush is running (or in the same turn of the event loop) are written together by the
 * next flush. Under light load a batch is one item and nothing waits; under heavy load batches
 * grow up to `maxBatch`, so the cost of a round trip is shared by everyone who arrived during it.
 * (River's jobcompleter, graphile-worker's add_jobs and PostgreSQL's own group commit work alike.)
 */
export type Batcher<I, O> = {
  /** Resolves with this item's outcome, or rejects with the error that failed its whole batch. */
  add(item: I): Promise<O>;
  /** Resolves once every item added so far has been flushed. */
  drain(): Promise<void>;
};

export type BatcherOptions<I, O> = {
  /** Writes a batch; returns one outcome per item, in order. */
  flush(items: I[]): Promise<O[]>;
  maxBatch: number;
  /** Batches written at once (each needs its own connection). */
  maxConcurrentFlushes: number;
  /**
   * While a flush runs, another starts only once this many items wait (default 1: at once).
   * Under moderate load the items that arrive during a flush then go together in the next one,
   * one statement instead of several small ones; under heavy load the flushes overlap.
   */
  extraFlushAt?: number;
};

type Pending<I, O> = { item: I; resolve(outcome: O): void; reject(error: unknown): void };

export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
  const pending: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  let idle: (() => void)[] = [];

  // A full batch always may start (a maxBatch below extraFlushAt must not stop the overlap).
  const extraFlushAt = Math.max(1, Math.min(options.extraFlushAt ?? 1, options.maxBatch));
  const mayRun = () => pending.length > 0 && inFlight < options.maxConcurrentFlushes && (inFlight === 0 || pending.length >= extraFlushAt);

  function schedule() {
    if (!mayRun()) return;
    if (pending.length >= options.maxBatch) return run();
    if (scheduled) return;
    scheduled = true;
    // After the I/O callbacks of this turn: every request parsed in it joins the batch.
    setImmediate(() => {
      scheduled = false;
      if (mayRun()) run();
    });
  }

  function run() {
    const batch = pending.splice(0, options.maxBatch);
    inFlight++;
    let flushing: Promise<O[]>;
    try {
      flushing = options.flush(batch.map((entry) => entry.item));
    } catch (error) {
      flushing = Promise.reject(error);
    }
    flushing
      .then(
        (outcomes) => batch.forEach((entry, index) => entry.resolve(outcomes[index]!)),
        (error: unknown) => batch.forEach((entry) => entry.reject(error)),
      )
      .finally(() => {
        inFlight--;
        if (pending.length > 0) schedule();
        else if (inFlight === 0) {
          const waiters = idle;
          idle = [];
          for (const wake of waiters) wake();
        }
      });
  }

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        schedule();
      });
    },
    drain() {
      if (pending.length === 0 && inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}
