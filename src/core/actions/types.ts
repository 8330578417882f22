import type { Logger } from "pino";
import type { z } from "zod";
import type { OutboundClient } from "../../infra/outbound/client.js";
import type { Clock } from "../../shared/clock.js";

/** What an action gets to do its work; nothing is imported as a global. */
export type ActionHelpers = {
  logger: Logger;
  /** Fires when the request is cancelled or the worker shuts down for good. */
  signal: AbortSignal;
  /** Reports progress, 0-100. */
  progress(percent: number): Promise<void>;
  clock: Clock;
  /** The guarded outbound client, for actions that call out (the `http` action). */
  http: Pick<OutboundClient, "send"> & { timeoutMs: number; maxBodyBytes: number };
};

/**
 * How an action runs, declared with it (every field optional; the defaults are the service's).
 * See README: Write your own action.
 */
export type ActionPolicy = {
  /**
   * Where the action runs: "loop" (the default) on the worker's event loop, for I/O-bound
   * actions; "thread" in the worker-thread pool (src/core/actions/thread-pool.ts), for
   * CPU-bound actions that would otherwise block the event loop. A thread action gets no
   * outbound client (`http.send` throws) and its input and result must be structured-cloneable;
   * it must be loaded from a module (ACTIONS, or `actionModules` of createRicochet), which
   * each thread imports.
   */
  runIn?: "loop" | "thread";
  /** How long one run may take, in ms, before it is aborted (default ACTION_TIME_LIMIT). */
  timeLimitMs?: number;
  /** At most this many runs at once in one worker process (default: no limit beyond WORKER_CONCURRENCY). */
  concurrency?: number;
  /**
   * Transient failures (a `RetryableError`, or any error that is not an `ActionError`) are run
   * again: `attempts` runs in all (default 1: no retry), the n-th retry `backoffMs[n-1]` ms after
   * the failure (the last value repeats; default 1 s). The request stays RUNNING meanwhile and
   * shows its runs so far in `attempts`.
   */
  retry?: { attempts: number; backoffMs?: readonly number[] };
  /** Largest accepted `input`, in bytes of JSON (default: BODY_LIMIT only). */
  maxInputBytes?: number;
};

export type ActionDefinition<Schema extends z.ZodType = z.ZodType, Result = unknown> = ActionPolicy & {
  name: string;
  description: string;
  input: Schema;
  /** The result's schema: documents it (JSON Schema in GET /api/v1/actions) and types `run`'s return. */
  result?: z.ZodType<Result>;
  /** The key under which the result sits in a callback body and in GET .../result. */
  resultKey: string;
  run(input: z.infer<Schema>, helpers: ActionHelpers): Promise<Result>;
};

/** An action's own failure: the request ends FAILED with these fields, and is not retried. */
export class ActionError extends Error {
  override name = "ActionError";
  constructor(
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
  ) {
    super(message);
  }
}

/** Marks a value as an action definition, also across copies of this package (Symbol.for). */
export const ACTION_BRAND = Symbol.for("ricochet.action");

/**
 * Defines an action; input and result types flow from the schemas. Export it from a module named
 * in ACTIONS (or pass it to createRicochet) and it joins the catalog, checked at start-up.
 */
export function defineAction<Schema extends z.ZodType, Result>(
  definition: ActionDefinition<Schema, Result>,
): ActionDefinition<Schema, Result> {
  return Object.defineProperty(definition, ACTION_BRAND, { value: true, enumerable: false });
}

export function isActionDefinition(value: unknown): value is ActionDefinition {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[ACTION_BRAND] === true;
}

/**
 * A failure worth another try (an upstream that answered 503, a timeout): the action's retry
 * policy decides whether and when it runs again. Without a retry policy it ends the request
 * FAILED with `code`, like an ActionError.
 */
export class RetryableError extends ActionError {
  override name = "RetryableError";
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
