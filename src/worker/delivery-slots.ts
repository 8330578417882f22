/**
 * The delivery slots of one worker process, shared fairly between receivers. At most `total`
 * attempts are in flight, and at most `perOrigin` of them to one origin (scheme, host and port),
 * so a receiver that hangs holds its own few slots and never the others'. When a slot frees, the
 * next attempt comes from the next origin in turn (round robin), not from whoever queued first.
 */
export type DeliverySlots = ReturnType<typeof createDeliverySlots>;

type Waiter = () => void;

export function createDeliverySlots(options: { total: number; perOrigin: number }) {
  let inFlight = 0;
  const perOrigin = new Map<string, number>();
  const waiting = new Map<string, Waiter[]>(); // insertion order is the round-robin order

  const busy = (origin: string) => perOrigin.get(origin) ?? 0;
  const take = (origin: string) => {
    inFlight++;
    perOrigin.set(origin, busy(origin) + 1);
  };

  function release(origin: string) {
    inFlight--;
    const left = busy(origin) - 1;
    if (left > 0) perOrigin.set(origin, left);
    else perOrigin.delete(origin);
    wakeNext();
  }

  function wakeNext() {
    for (const [origin, queue] of waiting) {
      if (inFlight >= options.total) return;
      if (busy(origin) >= options.perOrigin) continue;
      const next = queue.shift()!;
      // Served: this origin goes to the back of the line.
      waiting.delete(origin);
      if (queue.length) waiting.set(origin, queue);
      take(origin);
      next();
    }
  }

  return {
    /** A slot now, or undefined when none is free for this origin (the caller queues the work). */
    tryAcquire(origin: string): (() => void) | undefined {
      if (inFlight >= options.total || busy(origin) >= options.perOrigin || waiting.has(origin)) return undefined;
      take(origin);
      return once(() => release(origin));
    },

    /** Waits for a slot for this origin, in turn with the other origins' waiters. */
    acquire(origin: string): Promise<() => void> {
      const now = this.tryAcquire(origin);
      if (now) return Promise.resolve(now);
      return new Promise((resolve) => {
        const queue = waiting.get(origin) ?? [];
        queue.push(() => resolve(once(() => release(origin))));
        waiting.set(origin, queue);
      });
    },

    /** How many attempts to this origin wait for a slot in this process. */
    waitingFor: (origin: string) => waiting.get(origin)?.length ?? 0,

    stats: () => ({ inFlight, origins: perOrigin.size, waiting: [...waiting.values()].reduce((n, q) => n + q.length, 0) }),
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** The origin a callback URL is delivered to: its scheme, host and port. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
