/**
 * The delivery slots of one worker process, shared fairly between receivers. At most `total`
 * attempts are in flight, and at most the origin's current limit of them to one origin (scheme,
 * host and port), so a receiver that hangs holds its own few slots and never the others'. When a
 * slot frees, the next attempt comes from the next origin in turn (round robin), not from whoever
 * queued first.
 *
 * An origin's limit adapts to how it answers, the way TCP's congestion window does: it starts at
 * `perOrigin`; a quick answer while the origin uses at least half of its limit earns one more
 * slot (so a receiver under load doubles its limit every round of answers, up to `perOriginMax`,
 * and one that only ever gets a few attempts at a time earns nothing it has not shown it can
 * take); an answer that shows strain (a timeout, a failed connection, 429 or 502–504, or one
 * slower than `slowMs`) halves it, never below `perOrigin`. So a receiver that answers in a
 * millisecond gets the throughput it can take, and one that starts to hang falls back to
 * `perOrigin` slots within a few answers. A receiver never seen before starts at `perOrigin`.
 *
 * Waiting attempts can be turned away (their `acquire` rejects with `SlotRefused`, and the caller
 * puts them back in the queue): on strain, those the origin's new limit would not reach within
 * `shedAfterMs`; and all of them at shutdown.
 */
export type DeliverySlots = ReturnType<typeof createDeliverySlots>;

/** How an attempt went, for its origin's limit: `ok` a quick answer, `strained` one that shows strain. */
export type SlotVerdict = "ok" | "strained";

/**
 * Gives a slot back (once; later calls do nothing), with what the attempt showed, if it made one,
 * and how long the receiver took to answer (default: since the slot was taken).
 */
export type Slot = (verdict?: SlotVerdict, answeredInMs?: number) => void;

/** A waiting attempt turned away: it goes back to the queue for a while instead. */
export class SlotRefused extends Error {
  override name = "SlotRefused";
}

export type DeliverySlotsOptions = {
  total: number;
  /** The limit every origin starts at and never goes below. */
  perOrigin: number;
  /** The most an origin can earn (default `perOrigin`: a fixed limit). */
  perOriginMax?: number;
  /** An answer slower than this counts as strain (default: none does). */
  slowMs?: number;
  /** On strain, waiting attempts that would wait longer than this are turned away (default: none are). */
  shedAfterMs?: number;
  /** Milliseconds, for answer times (default performance.now). */
  now?: () => number;
};

type Waiter = { grant(): void; refuse(error: SlotRefused): void };

/** Origins whose answers are remembered; past this many, the least recently answered are forgotten. */
const REMEMBERED_ORIGINS = 10_000;

export function createDeliverySlots(options: DeliverySlotsOptions) {
  const floor = options.perOrigin;
  const now = options.now ?? (() => performance.now());
  const ceiling = Math.max(floor, options.perOriginMax ?? floor);
  let inFlight = 0;
  let waitingTotal = 0;
  const perOrigin = new Map<string, number>();
  /**
   * What is known of each origin that answered lately: its limit (the floor when absent), how long
   * its answers take (a moving average) and when the last one came. Insertion order is least
   * recently answered first.
   */
  const known = new Map<string, { limit: number; answerMs: number; answeredAt: number }>();
  const waiting = new Map<string, Waiter[]>(); // insertion order is the round-robin order

  const busy = (origin: string) => perOrigin.get(origin) ?? 0;
  const limitOf = (origin: string) => known.get(origin)?.limit ?? floor;
  const take = (origin: string) => {
    inFlight++;
    perOrigin.set(origin, busy(origin) + 1);
  };

  /** Called before the slot is given back: `busy` still counts the attempt that answered. */
  function adapt(origin: string, verdict: SlotVerdict, answeredInMs: number) {
    const strained = verdict === "strained" || (options.slowMs !== undefined && answeredInMs > options.slowMs);
    const before = known.get(origin);
    const limit = before?.limit ?? floor;
    const using = busy(origin) * 2 >= limit;
    known.delete(origin);
    known.set(origin, {
      limit: strained ? Math.max(floor, Math.floor(limit / 2)) : using ? Math.min(ceiling, limit + 1) : limit,
      answerMs: before ? before.answerMs * 0.8 + answeredInMs * 0.2 : answeredInMs,
      answeredAt: now(),
    });
    if (known.size > REMEMBERED_ORIGINS) known.delete(known.keys().next().value!);
    if (strained) shed(origin);
  }

  /** The time one answer of this origin takes: its usual time, or its silence if that is longer. */
  function perAnswerMs(origin: string, stats: { answerMs: number; answeredAt: number }): number {
    return busy(origin) > 0 ? Math.max(stats.answerMs, now() - stats.answeredAt) : stats.answerMs;
  }

  /** Turns away the origin's waiters that its limit would not reach within `shedAfterMs`. */
  function shed(origin: string) {
    const queue = waiting.get(origin);
    const stats = known.get(origin);
    if (!queue || !stats || options.shedAfterMs === undefined) return;
    const excess = Math.max(0, busy(origin) - stats.limit);
    const keep = Math.max(0, Math.floor((options.shedAfterMs * stats.limit) / perAnswerMs(origin, stats)) - excess);
    refuse(origin, queue.splice(keep));
  }

  function refuse(origin: string, refused: Waiter[]) {
    waitingTotal -= refused.length;
    if (waiting.get(origin)?.length === 0) waiting.delete(origin);
    for (const waiter of refused) waiter.refuse(new SlotRefused(`no delivery slot for ${origin} soon enough`));
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
      next.grant();
    }
  }

  function slot(origin: string): Slot {
    const takenAt = now();
    let done = false;
    return (verdict, answeredInMs) => {
      if (done) return;
      done = true;
      if (verdict) adapt(origin, verdict, answeredInMs ?? now() - takenAt);
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

    /** Waits for a slot for this origin, in turn with the other origins' waiters; rejects with `SlotRefused` if turned away. */
    acquire(origin: string): Promise<Slot> {
      const free = tryAcquire(origin);
      if (free) return Promise.resolve(free);
      return new Promise((resolve, reject) => {
        const queue = waiting.get(origin) ?? [];
        queue.push({ grant: () => resolve(slot(origin)), refuse: reject });
        waiting.set(origin, queue);
        waitingTotal++;
      });
    },

    /** Turns away every waiting attempt (shutdown: they go back to the queue for another process). */
    refuseAll(): void {
      for (const [origin, queue] of [...waiting]) refuse(origin, queue.splice(0));
    },

    /** How many attempts to this origin wait for a slot in this process. */
    waitingFor: (origin: string) => waiting.get(origin)?.length ?? 0,

    /** How many attempts wait for a slot in this process, all origins together. */
    waitingTotal: () => waitingTotal,

    /** The origin's current limit. */
    limitOf,

    /**
     * How long an attempt to this origin that starts waiting now would wait for its slot: the
     * attempts ahead of it (those waiting, and those in flight beyond a limit that shrank) times
     * the origin's answer time, shared by its slots. An origin whose attempts in flight have been
     * silent for longer than its usual answer time (it started to hang) is judged by that silence.
     * Undefined before its first answer.
     */
    expectedWaitMs(origin: string): number | undefined {
      const stats = known.get(origin);
      if (!stats) return undefined;
      const ahead = Math.max(0, busy(origin) - stats.limit) + (waiting.get(origin)?.length ?? 0);
      if (ahead === 0 && busy(origin) < stats.limit && inFlight < options.total) return 0;
      return ((ahead + 1) * perAnswerMs(origin, stats)) / stats.limit;
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
