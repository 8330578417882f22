import { DelayedError, type Job } from "bullmq";
import type { Logger } from "pino";
import { z } from "zod";
import type { ActionCatalog } from "../core/actions/catalog.js";
import type { ActionThreadPool } from "../core/actions/thread-pool.js";
import { retryBackoffMs } from "../core/actions/catalog.js";
import { ActionError, RetryableError, type ActionDefinition, type ActionHelpers } from "../core/actions/types.js";
import type { FinalStatus, Lifecycle } from "../core/lifecycle.js";
import type { FinalFields, LifecycleStatements } from "../db/lifecycle.js";
import type { Metrics } from "../infra/metrics.js";
import type { Clock } from "../shared/clock.js";
import { isDependencyDown } from "../shared/errors.js";
import type { RunActionJob } from "../shared/queues.js";

export type RunActionDeps = {
  lifecycle: Lifecycle;
  /** Runs `runIn: "thread"` actions off the event loop. */
  threads: ActionThreadPool;
  /** The time limit of an action that declares none. */
  defaultTimeLimitMs: number;
  actionHttp: ActionHelpers["http"];
  /** How long a job at its tenant's running limit, or its action's concurrency, waits before trying again. */
  tenantSlotRetryMs: number;
  catalog: ActionCatalog;
  /** Reads a request whose job does not name its action (enqueued by an older version). */
  statements: Pick<LifecycleStatements, "getById">;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
};

/** Why an action's signal fired: the request was cancelled, or this worker is going away. */
export class CancelledByClient extends Error {
  override name = "CancelledByClient";
}
export class WorkerShutdown extends Error {
  override name = "WorkerShutdown";
}

/**
 * Runs one request: claim (one statement), the action, finish (one statement). Every state
 * change is conditional, so a request cancelled or finished by someone else is left alone.
 * While the database is unreachable, the job waits in the queue and tries again shortly, without
 * using one of its attempts: an outage of any length turns into a delay, never a failure. Other
 * errors thrown from here are retried by BullMQ (its attempts), and the action runs again.
 */
export function createRunAction(deps: RunActionDeps, running: Map<string, AbortController>) {
  const { lifecycle, catalog, clock } = deps;
  /** Runs in progress in this process, per action with a concurrency policy. */
  const activeByAction = new Map<string, number>();

  return async function runAction(job: Job<RunActionJob>, token?: string): Promise<void> {
    try {
      await runOnce(job, token);
    } catch (error) {
      if (!isDependencyDown(error)) throw error;
      deps.logger.warn({ asyncRequestId: job.data.requestId, err: error }, "database unavailable: the job waits and tries again, using no attempt");
      await job.moveToDelayed(Date.now() + DEPENDENCY_RETRY_MS, token);
      throw new DelayedError();
    }
  };

  async function runOnce(job: Job<RunActionJob>, token?: string): Promise<void> {
    // The action's concurrency in this process, taken before the claim (check and count in one
    // synchronous step), so a job over it waits in the queue without having touched its request.
    // Jobs enqueued by an older version carry no action name: read it, so the request is never
    // claimed by a worker that lacks its action.
    const actionName = job.data.action ?? (await deps.statements.getById(job.data.requestId))?.action;
    if (actionName !== undefined && !catalog.has(actionName)) return leaveForAnotherWorker(job, actionName, token);
    const limited = actionName ? catalog.get(actionName) : undefined;
    if (limited?.concurrency !== undefined) {
      const active = activeByAction.get(limited.name) ?? 0;
      if (active >= limited.concurrency) {
        await job.moveToDelayed(Date.now() + deps.tenantSlotRetryMs, token);
        throw new DelayedError();
      }
      activeByAction.set(limited.name, active + 1);
    }
    try {
      await claimAndRun(job, token);
    } finally {
      if (limited?.concurrency !== undefined) activeByAction.set(limited.name, activeByAction.get(limited.name)! - 1);
    }
  }

  /**
   * The API that accepted the request knew its action, so the processes disagree on the catalog
   * (a deploy in progress, or a misconfigured worker): report it and leave the request for a
   * worker that has the action, rather than failing it.
   */
  async function leaveForAnotherWorker(job: Job<RunActionJob>, action: string, token?: string): Promise<never> {
    deps.logger.error(
      { asyncRequestId: job.data.requestId, action, actions: [...catalog.keys()] },
      "this worker has no such action: its catalog differs from the API's (see ACTIONS, BUILTIN_ACTIONS); the request waits",
    );
    await job.moveToDelayed(Date.now() + UNKNOWN_ACTION_RETRY_MS, token);
    throw new DelayedError();
  }

  async function claimAndRun(job: Job<RunActionJob>, token?: string): Promise<void> {
    const id = job.data.requestId;
    // Registered before RUNNING is written, so a cancel that races the start still aborts us.
    const controller = new AbortController();
    running.set(id, controller);
    try {
      const claimed = await lifecycle.claim(id);
      if (claimed.kind === "gone") return; // finished, cancelled, or never written
      if (claimed.kind === "at-limit") {
        // The tenant's limit is reached: wait in the queue (delayed) without using an attempt.
        await job.moveToDelayed(Date.now() + deps.tenantSlotRetryMs, token);
        throw new DelayedError();
      }
      const { row } = claimed;
      // The run's own lines carry its ids as fields; the action gets a child logger only if it asks
      // for one (a pino child costs more than the one line most runs write).
      const ids = { asyncRequestId: id, tenantId: row.tenantId, jobId: job.id };
      let child: Logger | undefined;
      const actionLogger = () => (child ??= deps.logger.child(ids));
      const action = catalog.get(row.action);
      if (!action) return leaveForAnotherWorker(job, row.action, token); // a job enqueued without its action's name
      if (row.runs > 1) deps.logger.warn({ ...ids, run: row.runs, attempts: action.retry?.attempts ?? 1 }, "running again (a retry, or after a crashed or stalled worker)");

      // One "action run" line per run, with its outcome (the final status it wrote, `retry` or
      // `interrupted`) and duration; `superseded` marks a run whose request was cancelled or
      // finished elsewhere meanwhile, so its own outcome was dropped.
      const started = performance.now();
      const elapsedMs = () => Math.round(performance.now() - started);
      const ran = (outcome: FinalStatus | "retry" | "interrupted", details: Record<string, unknown>, level: "info" | "warn" | "error" = "info", durationMs = elapsedMs()) => {
        deps.metrics.actionDuration.observe({ action: action.name }, durationMs / 1000);
        deps.logger[level]({ ...ids, action: action.name, run: row.runs, outcome, durationMs, ...details }, "action run");
      };
      const finishAs = async (status: FinalStatus, fields: FinalFields, details: Record<string, unknown> = {}, level: "info" | "error" = "info") => {
        const durationMs = elapsedMs(); // the action's time, not the write's
        const finished = await lifecycle.finish(id, status, fields);
        // What was written may differ from what was asked (a result that cannot be stored fails).
        if (!finished) return ran(status, { ...details, superseded: true }, level, durationMs);
        ran(finished.status as FinalStatus, { ...details, ...(finished.errorCode ? { errorCode: finished.errorCode } : {}) }, level, durationMs);
      };

      const input = action.input.safeParse(row.input);
      if (!input.success) {
        await finishAs("FAILED", {
          errorCode: "INVALID_INPUT",
          errorDesc: "The stored input no longer matches the action's schema",
          errorDetails: z.treeifyError(input.error).errors,
        });
        return;
      }

      const progress = (percent: number) => lifecycle.setProgress(id, Math.max(0, Math.min(100, Math.round(percent))));
      const timeLimitMs = action.timeLimitMs ?? deps.defaultTimeLimitMs;
      let result: unknown;
      try {
        result =
          action.runIn === "thread"
            ? await deps.threads.run(action.name, input.data, { signal: controller.signal, timeLimitMs, onProgress: (percent) => void progress(percent).catch(() => {}) })
            : await withinTimeLimit(action, timeLimitMs, controller, () =>
                action.run(input.data, {
                  get logger() {
                    return actionLogger();
                  },
                  signal: controller.signal,
                  clock,
                  http: deps.actionHttp,
                  progress,
                }),
              );
      } catch (error) {
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
        if (reason instanceof WorkerShutdown) {
          ran("interrupted", {}, "warn");
          throw reason;
        }
        if (reason instanceof CancelledByClient) {
          await finishAs("CANCELLED", { errorCode: "CANCELLED", errorDesc: "Cancelled while running" });
          return;
        }
        const transient = error instanceof RetryableError || !(error instanceof ActionError);
        if (transient && row.runs < (action.retry?.attempts ?? 1)) {
          // The retry policy: the request stays RUNNING (its slot kept) and runs again later.
          const delayMs = retryBackoffMs(action, row.runs);
          ran("retry", { err: error, attempts: action.retry!.attempts, retryInMs: delayMs }, "warn");
          await job.moveToDelayed(Date.now() + delayMs, token);
          throw new DelayedError();
        }
        if (error instanceof ActionError) {
          await finishAs("FAILED", { errorCode: error.code, errorDesc: error.message, errorDetails: error.details });
          return;
        }
        // An unexpected error: its stack goes with the run's line (the client sees ACTION_ERROR).
        await finishAs("FAILED", { errorCode: "ACTION_ERROR", errorDesc: "The action failed unexpectedly" }, { err: error }, "error");
        return;
      }
      await finishAs("COMPLETED", { result: result ?? null, progress: 100 });
    } finally {
      running.delete(id);
    }
  }
}

/** How soon a job whose action this worker does not have is offered again. */
export const UNKNOWN_ACTION_RETRY_MS = 5_000;

/** How soon a job that found the database unreachable tries again. */
export const DEPENDENCY_RETRY_MS = 1_000;

/**
 * An action on the event loop gets its time limit as an abort of its signal; if it does not stop
 * by itself, the request ends FAILED (ACTION_TIMEOUT) all the same and its promise is left to
 * settle on its own. (A thread action's thread is terminated instead: see thread-pool.ts.)
 */
async function withinTimeLimit<T>(action: ActionDefinition, limitMs: number, controller: AbortController, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ActionError("ACTION_TIMEOUT", `Action "${action.name}" exceeded its time limit of ${limitMs} ms`);
      controller.abort(error);
      reject(error);
    }, limitMs);
  });
  try {
    return await Promise.race([run(), expired]);
  } finally {
    clearTimeout(timer);
  }
}
