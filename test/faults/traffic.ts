/** One submit's outcome. Times are Date.now() when it was sent and when it was answered. */
export type SubmitOutcome =
  | { kind: "accepted"; id: string; sentAt: number; at: number }
  | { kind: "refused"; status: number; retryAfter: string | null; body: string; sentAt: number; at: number }
  | { kind: "error"; message: string; sentAt: number; at: number };

/**
 * Submits at a fixed rate (the pacing is the only timer here) and keeps every outcome. A submit
 * counts as accepted only if it answered 202 with `asyncRequest.id`; a transport error (the API
 * killed mid-request) is neither accepted nor refused by the service, and is kept as an error.
 */
export function startTraffic(options: {
  url: () => string;
  token: string;
  ratePerSecond: number;
  body: (n: number) => unknown;
  timeoutMs?: number;
  /** Stop after this many submits (sent); unbounded when absent. */
  total?: number;
}) {
  const outcomes: SubmitOutcome[] = [];
  const accepted = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  const listeners = new Set<() => void>();

  async function submitOne(n: number) {
    const sentAt = Date.now();
    try {
      const response = await fetch(`${options.url()}/api/v1/async`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${options.token}` },
        body: JSON.stringify(options.body(n)),
        signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
      });
      const text = await response.text();
      if (response.status === 202) {
        const id = (JSON.parse(text) as { asyncRequest?: { id?: string } }).asyncRequest?.id;
        if (id) {
          outcomes.push({ kind: "accepted", id, sentAt, at: Date.now() });
          accepted.set(id, Date.now());
        } else {
          outcomes.push({ kind: "refused", status: 202, retryAfter: null, body: `202 without asyncRequest.id: ${text.slice(0, 200)}`, sentAt, at: Date.now() });
        }
      } else {
        outcomes.push({ kind: "refused", status: response.status, retryAfter: response.headers.get("retry-after"), body: text.slice(0, 300), sentAt, at: Date.now() });
      }
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      outcomes.push({ kind: "error", message: cause?.code ?? cause?.message ?? (error as Error).message, sentAt, at: Date.now() });
    }
    for (const listener of listeners) listener();
  }

  const timer = setInterval(() => {
    if (stopped) return;
    const due = Math.floor(((performance.now() - started) / 1000) * options.ratePerSecond);
    // Never a burst to catch up after a stall of the test process: at most one tick's worth more.
    const limit = Math.min(due, sent + Math.ceil(options.ratePerSecond / 20) + 1, options.total ?? Infinity);
    while (sent < limit) {
      const work = submitOne(sent++);
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    }
  }, 10);

  const refused = () => outcomes.filter((o): o is Extract<SubmitOutcome, { kind: "refused" }> => o.kind === "refused");
  const errors = () => outcomes.filter((o): o is Extract<SubmitOutcome, { kind: "error" }> => o.kind === "error");

  return {
    outcomes,
    accepted,
    get sent() {
      return sent;
    },
    /** Submits answered (or failed in transport) so far. */
    get answered() {
      return outcomes.length;
    },
    refused,
    errors,
    /** Accepted submits that were answered after `since` (Date.now()). */
    acceptedSince: (since: number) => outcomes.reduce((n, o) => n + (o.kind === "accepted" && o.at >= since ? 1 : 0), 0),
    refusedSince: (since: number) => outcomes.reduce((n, o) => n + (o.kind === "refused" && o.at >= since ? 1 : 0), 0),
    /** Resolves when `condition` holds, re-checked after every answered submit. */
    waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!condition()) return;
          done();
          resolve();
        };
        const timeout = setTimeout(() => {
          done();
          reject(new Error(`traffic: timed out after ${timeoutMs} ms waiting for ${what} (sent ${sent}, accepted ${accepted.size}, refused ${refused().length}, errors ${errors().length})`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timeout);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    /** Stops sending and waits for every submit in flight to be answered. */
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.allSettled([...inFlight]);
    },
  };
}

export type Traffic = ReturnType<typeof startTraffic>;
