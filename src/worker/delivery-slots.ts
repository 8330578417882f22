/**
 * The delivery slots of one worker process, shared fairly between receivers. At most `total`
 * attempts are in flight, and at most the origin's current limit of them to one origin (scheme,
 * host and port), so a receiver that hangs holds its own few slots and never the others'. When a
 * slot frees, the next attempt comes from the next origin in turn (round robin), not from whoever
 * queued first.
 *
 * An origin's limit adapts to how it answers (additive increase, multiplicative decrease, as TCP
 * and Netflix's concurrency-limits do): it starts at `perOrigin`; every quick answer earns one
 * more slot, up to `perOriginMax`; every answer that shows strain (a timeout, a failed
 * connection, 429 or 502–504, or one slower than `slowMs`) halves it, never below `perOrigin`. So a
 * receiver that answers in a millisecond gets the throughput it can take, and one that starts to
 * hang falls back to `perOrigin` slots within a few answers. A receiver never seen before starts
 * at `perOrigin`: it has to earn more.
 */
export type DeliverySlots = ReturnType<typeof createDeliverySlots>;

/** How an attempt went, for its origin's limit: `ok` a quick answer, `strained` one that shows strain. */
export type SlotVerdict = "ok" | "strained";

/** Gives a slot back (once; later calls do nothing), with what the attempt showed, if it made one. */
export type Slot = (verdict?: SlotVerdict) => void;

export type DeliverySlotsOptions = {
  total: number;
  /** The limit every origin starts at and never goes below. */
  perOrigin: number;
  /** The most an origin can earn (default `perOrigin`: a fixed limit). */
  perOriginMax?: number;
  /** An answer slower than this counts as strain (default: none does). */
  slowMs?: number;
  /** Milliseconds, for how long a slot was held (default performance.now). */
  now?: () => number;
};

type Waiter = () => void;

/** Idle origins whose limit is remembered; past this many, the ones idle longest are forgotten. */
const REMEMBERED_ORIGINS = 10_000;

export function createDeliverySlots(options: DeliverySlotsOptions) {
  const floor = options.perOrigin;
  const now = options.now ?? (() => performance.now());
  const ceiling = Math.max(floor, options.perOriginMax ?? floor);
  let inFlight = 0;
  let waitingTotal = 0;
  const perOrigin = new Map<string, number>();
  /**
   * What is known of each origin answering lately: its limit (the floor when absent) and how long
   * its answers take (a moving average). Insertion order is least recently answered first.
   */
  const known = new Map<string, { limit: number; answerMs: number }>();
  const waiting = new Map<string, Waiter[]>(); // insertion order is the round-robin order

  const busy = (origin: string) => perOrigin.get(origin) ?? 0;
  const limitOf = (origin: string) => known.get(origin)?.limit ?? floor;
  const take = (origin: string) => {
    inFlight++;
    perOrigin.set(origin, busy(origin) + 1);
  };

  function adapt(origin: string, verdict: SlotVerdict, durationMs: number) {
    const strained = verdict === "strained" || (options.slowMs !== undefined && durationMs > options.slowMs);
    const before = known.get(origin);
    const limit = before?.limit ?? floor;
    known.delete(origin);
    known.set(origin, {
      limit: strained ? Math.max(floor, Math.floor(limit / 2)) : Math.min(ceiling, limit + 1),
      answerMs: before ? before.answerMs * 0.8 + durationMs * 0.2 : durationMs,
    });
    if (known.size > REMEMBERED_ORIGINS) known.delete(known.keys().next().value!);
  }

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
      if (busy(origin) >= limitOf(origin)) continue;
      const next = queue.shift()!;
      waitingTotal--;
      // Served: this origin goes to the back of the line.
      waiting.delete(origin);
      if (queue.length) waiting.set(origin, queue);
      take(origin);
      next();
    }
  }

  function slot(origin: string): Slot {
    const takenAt = now();
    let done = false;
    return (verdict) => {
      if (done) return;
      done = true;
      if (verdict) adapt(origin, verdict, now() - takenAt);
      release(origin);
    };
  }

  function tryAcquire(origin: string): Slot | undefined {
    if (inFlight >= options.total || busy(origin) >= limitOf(origin) || waiting.has(origin)) return undefined;
    take(origin);
    return slot(origin);
  }

  return {
    /** A slot now, or undefined when none is free for this origin (the caller queues the work). */
    tryAcquire,

    /** Waits for a slot for this origin, in turn with the other origins' waiters. */
    acquire(origin: string): Promise<Slot> {
      const free = tryAcquire(origin);
      if (free) return Promise.resolve(free);
      return new Promise((resolve) => {
        const queue = waiting.get(origin) ?? [];
        queue.push(() => resolve(slot(origin)));
        waiting.set(origin, queue);
        waitingTotal++;
      });
    },

    /** How many attempts to this origin wait for a slot in this process. */
    waitingFor: (origin: string) => waiting.get(origin)?.length ?? 0,

    /** How many attempts wait for a slot in this process, all origins together. */
    waitingTotal: () => waitingTotal,

    /** The origin's current limit. */
    limitOf,

    /**
     * How long an attempt to this origin that starts waiting now would wait for its slot, from how
     * long the origin's answers take lately and its limit; undefined before its first answer.
     */
    expectedWaitMs(origin: string): number | undefined {
      const stats = known.get(origin);
      if (!stats) return undefined;
      const queued = waiting.get(origin)?.length ?? 0;
      if (queued === 0 && busy(origin) < stats.limit && inFlight < options.total) return 0;
      return ((queued + 1) * stats.answerMs) / stats.limit;
    },

    stats: () => ({ inFlight, origins: perOrigin.size, waiting: waitingTotal }),
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
