import type { Logger } from "pino";
import { keyOf, newRequestRow, type ClaimOutcome, type FinalFields, type FinishItem, type IdempotencyRecord, type LifecycleStatements, type NewRequest } from "../db/lifecycle.js";
import type { AsyncRequestRow, RequestWithoutInput } from "../db/schema.js";
import type { Metrics } from "../infra/metrics.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Queues } from "../infra/queues.js";
import { toAsyncRequest } from "../shared/async-request.js";
import type { Clock } from "../shared/clock.js";
import { AppError, isDependencyDown } from "../shared/errors.js";
import type { AsyncRequestStatus } from "../shared/status.js";
import { createBatcher } from "./batcher.js";
import { findUnstorable } from "./storable.js";
import type { Limits } from "./limits.js";

/**
 * The request life-cycle, written once: submit (group commit: one INSERT and one addBulk per
 * batch), claim, finish (status, counters and the callback's first series in one statement,
 * then the status event and the callback job), cancel. The API, the worker and the sweeper
 * all come through here, so the fast path exists in one place.
 */

export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
const RETRY_AFTER_SECONDS = 5;
/**
 * While one batch of submits, claims or finishes is being written, a second starts only once
 * this many wait: at moderate load one statement a turn of the database instead of several small
 * ones (at 1,000 requests/s on 2 cores, PostgreSQL 41–42 % of a core instead of 44–48 %); under a
 * burst the batches overlap as before.
 */
const EXTRA_FLUSH_AT = 32;

export type SubmitItem = {
  request: NewRequest;
  idempotency?: { clientId: string; key: string; requestDigest: string } | undefined;
};

export type SubmitOutcome =
  | { kind: "created"; row: AsyncRequestRow }
  | { kind: "replay"; status: number; body: unknown }
  | { kind: "key-reused" }
  | { kind: "queue-full" };

/** Inside a batch: a second use of a key waits for the first to commit, then goes again. */
type FlushOutcome = SubmitOutcome | { kind: "again" } | { kind: "unavailable" } | { kind: "error"; error: unknown };

export type FinalStatus = Extract<AsyncRequestStatus, "COMPLETED" | "FAILED" | "CANCELLED">;

export type LifecycleDeps = {
  statements: LifecycleStatements;
  queues: Queues;
  events: PubSub;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  defaults: Limits;
  batch: { maxRows: number; maxConcurrentFlushes: number };
  /** In a process that delivers callbacks: makes a finished request's first attempt now, if it can. */
  deliverNow?: ((row: RequestWithoutInput) => boolean) | undefined;
};

export function createLifecycle(deps: LifecycleDeps) {
  const { statements, queues, events, clock, logger } = deps;

  async function writeBatch(items: SubmitItem[]): Promise<FlushOutcome[]> {
    const outcomes: (FlushOutcome | undefined)[] = new Array(items.length);
    const seenKeys = new Set<string>();
    items.forEach((item, index) => {
      if (!item.idempotency) return;
      const key = keyOf(item.idempotency.clientId, item.idempotency.key);
      if (seenKeys.has(key)) outcomes[index] = { kind: "again" };
      seenKeys.add(key);
    });
    const open = () => items.flatMap((item, index) => (outcomes[index] === undefined ? [{ item, index }] : []));
    const keyed = open().filter(({ item }) => item.idempotency);

    let admitted: Set<string>;
    if (keyed.length === 0) {
      // The common case: one autocommit statement, the tenant rows locked only while it runs.
      admitted = await statements.insertWithinLimits(statements.sql, items.map((item) => item.request), deps.defaults.maxQueued);
    } else {
      const now = clock.now();
      admitted = await statements.transaction(async (tx) => {
        const records: IdempotencyRecord[] = keyed.map(({ item }) => ({
          ...item.idempotency!,
          asyncRequestId: item.request.id,
          responseStatus: 202,
          responseBody: { asyncRequest: toAsyncRequest(newRequestRow(item.request)) },
          createdAt: item.request.createdAt,
        }));
        const claimed = await statements.claimKeys(tx, records, new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS));
        const taken = keyed.filter(({ item }) => !claimed.has(keyOf(item.idempotency!.clientId, item.idempotency!.key)));
        if (taken.length) {
          const stored = await statements.findKeys(tx, taken.map(({ item }) => item.idempotency!));
          for (const { item, index } of taken) {
            const previous = stored.get(keyOf(item.idempotency!.clientId, item.idempotency!.key));
            outcomes[index] = !previous
              ? { kind: "again" }
              : previous.requestDigest === item.idempotency!.requestDigest
                ? { kind: "replay", status: previous.responseStatus, body: previous.responseBody }
                : { kind: "key-reused" };
          }
        }
        const candidates = open();
        const inserted = await statements.insertWithinLimits(tx, candidates.map(({ item }) => item.request), deps.defaults.maxQueued);
        const refused = candidates.filter(({ item }) => item.idempotency && !inserted.has(item.request.id));
        await statements.releaseKeys(tx, refused.map(({ item }) => item.idempotency!));
        return inserted;
      });
    }

    const created = open().filter(({ item }) => admitted.has(item.request.id));
    if (created.length) {
      try {
        await queues.enqueueRuns(created.map(({ item }) => ({ id: item.request.id, action: item.request.action })));
      } catch (error) {
        // A 202 means written and enqueued: take the rows back and answer 503. If even that
        // fails, the rows stay and the sweeper enqueues them, so they are accepted after all.
        logger.warn({ err: error, requests: created.length }, "enqueue failed; taking the batch back");
        const gone = await statements
          .discard(
            created.map(({ item }) => item.request.id),
            created.flatMap(({ item }) => (item.idempotency ? [{ ...item.idempotency, asyncRequestId: item.request.id }] : [])),
          )
          .catch((discardError: unknown) => {
            logger.error({ err: discardError }, "could not take back unenqueued requests; the sweeper will enqueue them");
            return new Set<string>();
          });
        for (const { item, index } of created) if (gone.has(item.request.id)) outcomes[index] = { kind: "unavailable" };
      }
    }
    return items.map((item, index) => outcomes[index] ?? (admitted.has(item.request.id) ? { kind: "created", row: newRequestRow(item.request) } : { kind: "queue-full" }));
  }

  // Submits, claims and finishes share one batching rule.
  const batching = { maxBatch: deps.batch.maxRows, maxConcurrentFlushes: deps.batch.maxConcurrentFlushes, extraFlushAt: EXTRA_FLUSH_AT };

  const submits = createBatcher<SubmitItem, FlushOutcome>({
    ...batching,
    async flush(items) {
      deps.metrics.submitBatchRows.observe(items.length);
      try {
        return await writeBatch(items);
      } catch (error) {
        // One bad row must not fail its neighbours: unless the database is down, write each alone.
        if (items.length === 1 || isDependencyDown(error)) throw error;
        return Promise.all(items.map((item) => writeBatch([item]).then((outcomes) => outcomes[0]!, (itemError: unknown) => ({ kind: "error" as const, error: itemError }))));
      }
    },
  });

  // Claims and finishes are batched like submits: many jobs that start or end together share one
  // statement, so a tenant's counters move once per batch, not once per job (one hot row less).
  const claims = createBatcher<string, ClaimOutcome | "again">({
    ...batching,
    async flush(ids) {
      const first = firstOfEach(ids, (id) => id);
      const outcomes = await statements.claimMany(ids.filter((_, i) => first[i]), deps.defaults.maxConcurrent, clock.now());
      return ids.map((id, i) => (first[i] ? outcomes.get(id)! : "again"));
    },
  });
  const finishes = createBatcher<FinishItem, (RequestWithoutInput & { priorStatus: AsyncRequestStatus }) | undefined | "again">({
    ...batching,
    async flush(items) {
      const first = firstOfEach(items, (item) => item.id);
      const rows = await statements.finishMany(items.filter((_, i) => first[i]));
      return items.map((item, i) => (first[i] ? rows.get(item.id) : "again"));
    },
  });

  async function finish(id: string, status: FinalStatus, fields: FinalFields = {}): Promise<RequestWithoutInput | undefined> {
    // An action's result obeys the same storage rule as a client's input (an upstream's body may
    // hold NUL): such a result would fail the write on every retry, so the request fails instead.
    const unstorable = status === "COMPLETED" ? findUnstorable(fields.result, "result") : undefined;
    if (unstorable) {
      status = "FAILED";
      fields = { errorCode: "RESULT_NOT_STORABLE", errorDesc: `The action's result cannot be stored: ${unstorable.path} ${unstorable.message}` };
    }
    let row: (RequestWithoutInput & { priorStatus: AsyncRequestStatus }) | undefined | "again";
    do row = await finishes.add({ id, to: status, at: clock.now(), fields });
    while (row === "again");
    if (!row) return undefined;
    deps.metrics.requestsFinished.inc({ action: row.action, status });
    // The callback's first attempt: made by this process when it delivers callbacks (at once, or
    // after the attempts waiting for the same receiver), else enqueued as part of finishing.
    if (row.callbackStatus === "PENDING" && !deps.deliverNow?.(row)) {
      // Enqueued as part of finishing; if this fails (or we crash first), the sweeper finds the PENDING series.
      await queues.enqueueCallback(id, row.callbackSeries).catch((error: unknown) =>
        logger.warn({ err: error, asyncRequestId: id }, "could not enqueue the callback; the sweeper will"),
      );
    }
    // Announced once the callback is on its way, so whoever sees the final status can rely on it.
    void events.publishStatus({ id, status });
    return row;
  }

  return {
    /** Writes a request with its batch and enqueues it; resolves once both are done. */
    async submit(item: SubmitItem): Promise<SubmitOutcome> {
      for (;;) {
        const outcome = await submits.add(item);
        switch (outcome.kind) {
          case "again":
            continue;
          case "unavailable":
            throw new AppError("unavailable", "The queue is unavailable; nothing was accepted, retry shortly", { retryAfter: RETRY_AFTER_SECONDS });
          case "error":
            throw outcome.error;
          default:
            return outcome;
        }
      }
    },

    /** QUEUED → RUNNING within the tenant's running limit, in one statement. */
    async claim(id: string): Promise<ClaimOutcome> {
      let claimed: ClaimOutcome | "again";
      do claimed = await claims.add(id);
      while (claimed === "again");
      if (claimed.kind === "claimed") void events.publishStatus({ id, status: "RUNNING" });
      return claimed;
    },

    finish,

    /** Cancels a request that has not finished; a running action's AbortSignal fires. */
    async cancel(id: string, by: string): Promise<RequestWithoutInput | undefined> {
      const cancelled = await finish(id, "CANCELLED", { errorCode: "CANCELLED", errorDesc: `Cancelled by ${by}` });
      if (cancelled) {
        // A waiting job is removed; an active one is locked and ends when its action sees the abort.
        await Promise.allSettled([events.publishCancel(id), queues.jobs.remove(id)]);
      }
      return cancelled;
    },

    /** Records an action's progress and announces it like a status change (SSE streams it). */
    async setProgress(id: string, percent: number): Promise<void> {
      await statements.setProgress(id, percent, clock.now());
      void events.publishStatus({ id, status: "RUNNING" });
    },

    /** Waits for the submits, claims and finishes already handed in (shutdown). */
    drain: () => Promise.all([submits.drain(), claims.drain(), finishes.drain()]).then(() => undefined),
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

/** For each item, whether it is the first with its key: a batch statement takes each row once. */
function firstOfEach<T>(items: readonly T[], key: (item: T) => string): boolean[] {
  const seen = new Set<string>();
  return items.map((item) => !seen.has(key(item)) && Boolean(seen.add(key(item))));
}
