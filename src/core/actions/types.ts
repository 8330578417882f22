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

export type ActionDefinition<Schema extends z.ZodType = z.ZodType, Result = unknown> = {
  name: string;
  description: string;
  input: Schema;
  /** The key under which the result sits in a callback body and in GET .../result. */
  resultKey: string;
  /**
   * Where the action runs: "loop" (the default) on the worker's event loop, for I/O-bound
   * actions; "thread" in the worker-thread pool (src/core/actions/thread-pool.ts), for
   * CPU-bound actions that would otherwise block the event loop. A thread action gets no
   * outbound client (`http.send` throws) and its input and result must be structured-cloneable.
   */
  runIn?: "loop" | "thread";
  /** How long one run may take, in ms, before it is aborted; the caller applies a default when unset. */
  timeLimitMs?: number;
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

export function defineAction<Schema extends z.ZodType, Result>(
  definition: ActionDefinition<Schema, Result>,
): ActionDefinition<Schema, Result> {
  return definition;
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
