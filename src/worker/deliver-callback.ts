import { createHmac } from "node:crypto";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import type { Logger } from "pino";
import type { ActionCatalog } from "../core/actions/catalog.js";
import { createBatcher } from "../core/batcher.js";
import { RetryAt, type CallbackSchedule } from "../core/callback-schedule.js";
import type { AttemptRecord, LifecycleStatements } from "../db/lifecycle.js";
import type { RequestWithoutInput } from "../db/schema.js";
import type { Metrics } from "../infra/metrics.js";
import type { Queues } from "../infra/queues.js";
import type { AttemptLeases } from "./attempt-leases.js";
import { originOf, SlotRefused, type DeliverySlots, type Slot, type SlotVerdict } from "./delivery-slots.js";
import { OutboundError, type OutboundClient, type OutboundErrorClass } from "../infra/outbound/client.js";
import { toAsyncRequest } from "../shared/async-request.js";
import { callbackMessageId, type CallbackStatus, type DeliverCallbackJob } from "../shared/callbacks.js";
import { isDependencyDown } from "../shared/errors.js";
import { DEPENDENCY_RETRY_MS } from "./run-action.js";
import type { Clock } from "../shared/clock.js";

/** The first 16 KiB of a receiver's answer are kept with the attempt. */
export const RESPONSE_BODY_LIMIT = 16 * 1024;

export type DeliverCallbackDeps = {
  statements: LifecycleStatements;
  catalog: ActionCatalog;
  http: OutboundClient;
  /** The client's active signing secrets (cached; see src/auth/signing-secrets.ts). */
  signingSecrets(clientId: string): Promise<string[]>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  schedule: CallbackSchedule;
  timeoutMs: number;
  /** Attempts to one origin that may wait here for a slot, before its answers tell how long they take. */
  originBacklog: number;
  /**
   * How long a job sent back for its origin's backlog waits before it is fetched again; an
   * attempt that would wait here longer than this for its origin's slot is sent back.
   */
  originBackoffMs: number;
  /**
   * Attempts that may wait here for a slot, all origins together, before a finished request's
   * first attempt goes to the `callbacks` queue instead (a waiting first attempt holds its row in
   * memory, under its attempt lease).
   */
  inlineBacklog: number;
};

/** What a receiver gets: the AsyncRequest as GET shows it, and the result under the action's key. */
export function callbackBody(row: RequestWithoutInput, catalog: ActionCatalog): string {
  const resultKey = catalog.get(row.action)?.resultKey ?? "result";
  return JSON.stringify({ asyncRequest: toAsyncRequest(row), [resultKey]: row.status === "COMPLETED" ? row.result : null });
}

/**
 * Standard Webhooks headers; one `v1,` signature per active secret (two during a rotation): the
 * base64 HMAC-SHA256, keyed with the secret's bytes (`whsec_` + base64), of "id.timestamp.body".
 * Computed with node:crypto: the standardwebhooks package signs with a pure-JavaScript SHA-256
 * (fast-sha256), several times slower on a path every delivery takes. The tests verify every
 * signature with the standardwebhooks library itself.
 */
export function signatureHeaders(messageId: string, at: Date, body: string, secrets: readonly string[]): Record<string, string> {
  const timestamp = String(Math.floor(at.getTime() / 1000));
  const headers: Record<string, string> = { "webhook-id": messageId, "webhook-timestamp": timestamp };
  if (secrets.length) {
    const signed = `${messageId}.${timestamp}.${body}`;
    headers["webhook-signature"] = secrets.map((secret) => `v1,${createHmac("sha256", secretKey(secret)).update(signed).digest("base64")}`).join(" ");
  }
  return headers;
}

const secretKey = (secret: string) => Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");

/** PostgreSQL text cannot hold NUL: a receiver's answer is kept with U+FFFD in its place. */
const storableText = (text: string | null) => text && text.replaceAll("\u0000", "\uFFFD");

/**
 * Attempts are recorded in batches: every delivery that finishes while a write is running joins
 * the next one (one statement updates the series and inserts the attempts). Two attempts of one
 * request never share a batch; the second goes with the next.
 */
/**
 * The requests of callback jobs that start together are read together: one SELECT per batch
 * instead of one per job (a redelivery storm starts hundreds at once).
 */
function createRowReader(statements: LifecycleStatements) {
  const batcher = createBatcher<string, RequestWithoutInput | undefined>({
    maxBatch: 500,
    maxConcurrentFlushes: 2,
    async flush(ids) {
      const rows = await statements.getManyWithoutInput([...new Set(ids)]);
      return ids.map((id) => rows.get(id));
    },
  });
  return (id: string) => batcher.add(id);
}

function createAttemptRecorder(statements: LifecycleStatements) {
  const batcher = createBatcher<AttemptRecord, boolean | "again">({
    maxBatch: 500,
    maxConcurrentFlushes: 2,
    async flush(attempts) {
      const seen = new Set<string>();
      const first = attempts.filter((attempt) => !seen.has(attempt.requestId) && seen.add(attempt.requestId));
      const current = await statements.recordAttempts(first);
      return attempts.map((attempt) => (first.includes(attempt) ? current.has(attempt.requestId) : "again"));
    },
  });
  return async function record(attempt: AttemptRecord): Promise<boolean> {
    for (;;) {
      const outcome = await batcher.add(attempt);
      if (outcome !== "again") return outcome;
    }
  };
}

/** The bounded outcome classes of an attempt, as metrics and logs name them. */
export type AttemptOutcomeClass = "200" | "2xx" | "3xx" | "4xx" | "5xx" | "timeout" | "network" | "blocked";

/** An attempt's class: its status code's class (200 alone delivers), or its error's kind. */
export function attemptOutcomeClass(statusCode: number | null, errorClass: string | null): AttemptOutcomeClass {
  if (statusCode !== null) {
    if (statusCode === 200) return "200";
    if (statusCode >= 500) return "5xx";
    if (statusCode >= 400) return "4xx";
    if (statusCode >= 300) return "3xx";
    return "2xx"; // undici hands over no 1xx as a final answer
  }
  switch (errorClass as OutboundErrorClass) {
    case "timeout":
      return "timeout";
    case "blocked_address":
    case "invalid_url":
      return "blocked"; // refused by the address policy before any connection
    default:
      return "network";
  }
}

/** Answers that say "too much": rate limited, or a gateway whose upstream is down or too slow. */
const OVERLOAD_STATUSES = new Set([429, 502, 503, 504]);

/**
 * What an attempt shows of its receiver's health, for its origin's share of the delivery slots:
 * no verdict when no request was sent (a blocked address), strain when it timed out, could not
 * connect, or answered 429, 502, 503 or 504 (slowness is judged by the slots themselves). A
 * quick 500 or 404 is a failed attempt but no sign of overload: it keeps its slots.
 */
export function slotVerdict(statusCode: number | null, errorClass: string | null): SlotVerdict | undefined {
  if (statusCode !== null) return OVERLOAD_STATUSES.has(statusCode) ? "strained" : "ok";
  return errorClass === "blocked_address" || errorClass === "invalid_url" ? undefined : "strained";
}

/** `retryAt`: when the next attempt is due, in this process's wall-clock ms (what BullMQ's delays use). */
export type AttemptOutcome = { status: CallbackStatus; retryAt: number | undefined; current: boolean };

/**
 * Callback delivery. Success is exactly HTTP 200; anything else is recorded and, while retries
 * remain, scheduled by the callback schedule. The first attempt of a series is made at once by
 * the process that finished the request, if it has a free delivery slot (`deliverNow`): no queue
 * hop, no second read of the row. Retries, and first attempts that found no slot, are jobs of
 * the `callbacks` queue (`processJob`). An attempt lost to a crash is found by the sweeper: its
 * series stays PENDING or RETRYING with no job.
 */
export function createCallbackDelivery(deps: DeliverCallbackDeps & { queues: Queues; slots: DeliverySlots; leases: AttemptLeases }) {
  const { statements, clock, metrics, schedule, slots } = deps;
  const recordAttempt = createAttemptRecorder(statements);
  const readRow = createRowReader(statements);
  const events = new EventEmitter<{ attempt: [requestId: string, status: CallbackStatus] }>();
  const inline = new Set<Promise<void>>();

  /**
   * Whether an attempt to this origin waits here for a slot, rather than go back to the queue for
   * `originBackoffMs`: while it would wait less than that (a receiver that answers quickly drains
   * its line fast), or, before the origin has answered, while fewer than `originBacklog` wait.
   */
  function waitsHere(origin: string): boolean {
    const expectedMs = slots.expectedWaitMs(origin);
    return expectedMs === undefined ? slots.waitingFor(origin) < deps.originBacklog : expectedMs <= deps.originBackoffMs;
  }

  /** One attempt; its slot is given back as soon as the HTTP exchange is over (before the record). */
  async function attemptOnce(row: RequestWithoutInput, attempt: number, releaseSlot: Slot): Promise<AttemptOutcome> {
    const series = row.callbackSeries;
    const messageId = callbackMessageId(row.id, series);
    const body = callbackBody(row, deps.catalog);
    const startedAt = clock.now();
    const headers = {
      "content-type": "application/json",
      ...signatureHeaders(messageId, startedAt, body, await deps.signingSecrets(row.createdBy)),
    };

    const started = performance.now();
    let statusCode: number | null = null;
    let responseBody: string | null = null;
    let errorClass: string | null = null;
    let errorMessage: string | null = null;
    try {
      const response = await deps.http.send({ url: row.callbackUrl!, method: "POST", headers, body, timeoutMs: deps.timeoutMs, maxBodyBytes: RESPONSE_BODY_LIMIT });
      statusCode = response.statusCode;
      responseBody = response.body.toString("utf8");
      if (statusCode !== 200) {
        errorClass = "http_status";
        errorMessage = `the receiver answered ${statusCode}; only 200 counts as delivered`;
      }
    } catch (error) {
      if (!(error instanceof OutboundError)) {
        releaseSlot(); // our own failure, not the receiver's: no verdict on it
        throw error;
      }
      errorClass = error.errorClass;
      errorMessage = error.message;
    }
    // The receiver is judged by its own answer time, not by the signing that came before.
    releaseSlot(slotVerdict(statusCode, errorClass), performance.now() - started);
    const durationMs = Math.round(performance.now() - started);
    const endedAt = Date.now();
    const delivered = statusCode === 200;
    const delayMs = delivered ? undefined : schedule.delayAfter(attempt);
    const status: CallbackStatus = delivered ? "DELIVERED" : delayMs === undefined ? "EXHAUSTED" : "RETRYING";

    const nextAttemptAt = delayMs === undefined ? null : new Date(startedAt.getTime() + durationMs + delayMs);
    const retryAt = delayMs === undefined ? undefined : endedAt + delayMs;
    const current = await recordAttempt({
      id: randomUUID(),
      requestId: row.id,
      series,
      attempt,
      webhookId: messageId,
      url: row.callbackUrl!,
      startedAt,
      durationMs,
      statusCode,
      errorClass,
      errorMessage: storableText(errorMessage),
      responseBody: storableText(responseBody),
      delivered,
      callbackStatus: status,
      nextAttemptAt,
    });
    const outcome = attemptOutcomeClass(statusCode, errorClass);
    metrics.callbackAttempts.inc({ outcome });
    metrics.callbackDuration.observe(durationMs / 1000);
    // Finish to delivery, retries included; a redelivery (a later series) would only add noise.
    if (delivered && current && series === 1 && row.finishedAt) {
      metrics.callbackDeliveryLag.observe(Math.max(0, startedAt.getTime() + durationMs - row.finishedAt.getTime()) / 1000);
    }
    events.emit("attempt", row.id, status);

    // One line per attempt; the receiver's answer and the headers (signatures) are never logged.
    const log = { asyncRequestId: row.id, tenantId: row.tenantId, action: row.action, series, attempt, of: schedule.totalAttempts, outcome, statusCode, errorClass, durationMs };
    if (!current) {
      deps.logger.info({ ...log, error: errorMessage }, "callback attempt superseded: a redelivery started a newer series meanwhile");
    } else if (delivered) {
      deps.logger.info(log, "callback delivered");
    } else if (status === "EXHAUSTED") {
      metrics.callbacksExhausted.inc();
      deps.logger.warn({ ...log, error: errorMessage }, "callback EXHAUSTED: every attempt failed");
    } else {
      deps.logger.info({ ...log, error: errorMessage, retryInMs: delayMs }, "callback attempt failed");
    }
    return { status, retryAt, current };
  }

  async function processOnce(job: Job<DeliverCallbackJob>, token?: string): Promise<void> {
    const { requestId, series, offset } = job.data;
    const row = await readRow(requestId);
    if (!row?.callbackUrl || row.callbackSeries !== series || row.callbackStatus === "DELIVERED" || row.callbackStatus === "EXHAUSTED") return;
    const origin = originOf(row.callbackUrl);
    if (!waitsHere(origin)) {
      await job.moveToDelayed(Date.now() + deps.originBackoffMs, token);
      throw new DelayedError();
    }
    const attempt = offset + job.attemptsMade + 1;
    let release: Slot;
    try {
      release = await slots.acquire(origin);
    } catch (error) {
      if (!(error instanceof SlotRefused)) throw error;
      // Turned away while waiting (its receiver showed strain, or this worker is stopping): back
      // to the queue for a while, using no attempt.
      await job.moveToDelayed(Date.now() + deps.originBackoffMs, token);
      throw new DelayedError();
    }
    let outcome: AttemptOutcome;
    try {
      outcome = await attemptOnce(row, attempt, release);
    } finally {
      release(); // once: a no-op when the attempt already gave the slot back
    }
    if (outcome.current && outcome.status === "RETRYING") {
      throw new RetryAt(`attempt ${attempt} of ${schedule.totalAttempts} failed`, outcome.retryAt!);
    }
    // An exhausted series is a failed job, so queue counts (`ricochet queues`) show it as one.
    if (outcome.current && outcome.status === "EXHAUSTED") throw new UnrecoverableError(`callback EXHAUSTED after ${attempt} attempts`);
  }

  /**
   * Makes a series' first attempt in this process, under a lease, once `slot` gives it a slot; if
   * it is turned away while waiting, the attempt becomes a job of the queue instead.
   */
  function deliverInline(row: RequestWithoutInput, slot: Promise<Slot>): void {
    const lease = deps.leases.hold(row.id, row.callbackSeries);
    const work = slot
      .then(
        async (release) => {
          const outcome = await attemptOnce(row, 1, release).finally(release);
          if (!outcome.current || outcome.status !== "RETRYING") return;
          const delayMs = Math.max(0, outcome.retryAt! - Date.now());
          await deps.queues.enqueueCallback(row.id, row.callbackSeries, { offset: 1, delayMs });
        },
        async (error: unknown) => {
          if (!(error instanceof SlotRefused)) throw error;
          await deps.queues.enqueueCallback(row.id, row.callbackSeries, { offset: 0, delayMs: deps.originBackoffMs });
        },
      )
      .catch((error: unknown) =>
        deps.logger.warn({ err: error, asyncRequestId: row.id }, "first callback attempt could not be made or recorded; the sweeper will resume the series"),
      )
      .finally(() => {
        lease();
        inline.delete(work);
      });
    inline.add(work);
  }

  /**
   * A just-finished request's first attempt, in this process: at once when its origin has a free
   * slot, else after the attempts already waiting here, unless too many already wait (then the
   * caller enqueues it). No queue hop and no second read of the row either way.
   */
  function deliverNow(row: RequestWithoutInput): boolean {
    const origin = originOf(row.callbackUrl!);
    const now = slots.tryAcquire(origin);
    if (now) {
      deliverInline(row, Promise.resolve(now));
      return true;
    }
    if (slots.waitingTotal() >= deps.inlineBacklog || !waitsHere(origin)) return false;
    deliverInline(row, slots.acquire(origin));
    return true;
  }

  return {
    /** Told after every recorded attempt (tests wait on it instead of sleeping). */
    events,

    /**
     * A `callbacks` job: the next attempt of its series; a failure that may be retried is thrown.
     * It waits for a slot of its origin, in turn with other origins; when its origin already has
     * a backlog here, it goes back to the queue for a while without using an attempt, so one
     * slow receiver cannot fill this worker with its jobs.
     */
    async processJob(job: Job<DeliverCallbackJob>, token?: string): Promise<void> {
      try {
        await processOnce(job, token);
      } catch (error) {
        // The database is away (reading the row, or recording an attempt made meanwhile): wait and
        // try again without spending one of the series' attempts; an unrecorded attempt is repeated.
        if (!isDependencyDown(error)) throw error;
        await job.moveToDelayed(Date.now() + DEPENDENCY_RETRY_MS, token);
        throw new DelayedError();
      }
    },

    /**
     * The first attempt of a just-finished request's series, in this process (now, or after the
     * attempts waiting for its origin); false when too many wait already (the caller enqueues it
     * instead). A failure schedules the retries as a job, resuming the series after this attempt.
     */
    deliverNow,

    /**
     * Turns away every attempt waiting for a slot (shutdown): callback jobs go back to the queue,
     * first attempts become jobs. Attempts in flight go on.
     */
    refuseWaiting: () => slots.refuseAll(),

    /** Turns away the waiting attempts, then waits for the first attempts in flight (shutdown). */
    drain: async () => {
      slots.refuseAll();
      await Promise.allSettled([...inline]);
    },
  };
}

export type CallbackDelivery = ReturnType<typeof createCallbackDelivery>;
