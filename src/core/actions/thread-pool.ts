/**
 * A pool of worker threads for CPU-bound actions (`runIn: "thread"`), so that they do not
 * block the event loop that serves the API, renews job locks and delivers callbacks.
 *
 *   const pool = createActionThreadPool({ maxThreads: 2 });
 *   const result = await pool.run("analyse", input, { signal, timeLimitMs: 60_000 });
 *   await pool.close();
 *
 * - `run` takes the action's already validated input (what `action.run` would get) and
 *   resolves with its result. Input and result cross threads by structured cloning.
 * - An `ActionError` thrown by the action rejects `run` with an equal `ActionError`; other
 *   errors with an `Error` of the same name and message.
 * - `timeLimitMs` counts from the moment the action starts in a thread (waiting for a free
 *   thread does not count). When it passes, the thread is terminated (piscina replaces it)
 *   and `run` rejects with `ActionError("ACTION_TIMEOUT")`.
 * - When `signal` aborts, the task leaves the queue or its thread is terminated, and `run`
 *   rejects with `signal.reason`, so a caller can tell a cancellation from a shutdown.
 * - A thread that exceeds `maxOldGenerationSizeMb` of heap is terminated by Node; `run`
 *   rejects with `ActionError("ACTION_OUT_OF_MEMORY")` and the pool starts a new thread.
 * - `onProgress` receives what the action reports with `helpers.progress`, all of it before
 *   `run` settles.
 *
 * Threads load `thread-worker`, which imports the pool's `modules` (by default the built-in
 * thread actions, thread-actions.ts) and looks actions up by name among their exports.
 *
 * Where the thread code comes from: this file is either src/core/actions/thread-pool.ts,
 * run from source by tsx (`node --import tsx`, `tsx`) or by vitest, or the compiled
 * dist/core/actions/thread-pool.js (`npm run build`, plain `node`). The worker and module
 * files are taken next to it with this file's own extension, so .ts from source and .js
 * from dist; for .ts the threads get `--import <tsx loader>` in their execArgv (resolved
 * from this package, so it works whatever the cwd, and also where the parent process was not
 * started by tsx, such as a vitest fork).
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { Piscina } from "piscina";
import { ActionError, RetryableError } from "./types.js";
import type { SerializedError, ThreadMessage, ThreadOutcome, ThreadTask } from "./thread-worker.js";

export type ActionThreadPoolOptions = {
  /** Threads at most (default: available cores - 1, at least 1, at most 4). */
  maxThreads?: number;
  /** Threads kept even when idle (default 0: threads start on demand). */
  minThreads?: number;
  /** An idle thread above `minThreads` ends after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Heap (old generation) per thread, in MB (default 512); a thread that needs more is ended. */
  maxOldGenerationSizeMb?: number;
  /**
   * Modules (file URLs or absolute paths) whose exported thread actions the threads offer
   * (default: `[BUILT_IN_THREAD_ACTIONS]`). Each exports actions made with `defineAction`
   * and `runIn: "thread"`; two actions with the same name are an error.
   */
  modules?: readonly (string | URL)[];
  /** How long `close` waits for running tasks before it terminates their threads (default 10 s). */
  closeTimeoutMs?: number;
  /** Told of thread failures that no task saw (a thread dying while idle). */
  logger?: { warn(details: object, message: string): void };
};

export type ThreadRunOptions = {
  signal?: AbortSignal;
  timeLimitMs?: number;
  onProgress?: (percent: number) => void;
};

export type ActionThreadPool = {
  run(actionName: string, input: unknown, options?: ThreadRunOptions): Promise<unknown>;
  /** Rejects tasks still waiting, lets running ones finish (up to `closeTimeoutMs`), ends the threads. */
  close(): Promise<void>;
};

const fromSource = import.meta.url.endsWith(".ts");
const extension = fromSource ? ".ts" : ".js";

/** The module of built-in thread actions, the default of `modules`. */
export const BUILT_IN_THREAD_ACTIONS = new URL(`./thread-actions${extension}`, import.meta.url).href;

const WORKER_FILE = new URL(`./thread-worker${extension}`, import.meta.url).href;

const DEFAULT_MAX_OLD_GENERATION_MB = 512;

export function createActionThreadPool(options: ActionThreadPoolOptions = {}): ActionThreadPool {
  const maxThreads = options.maxThreads ?? Math.min(4, Math.max(1, availableParallelism() - 1));
  const maxOldGenerationSizeMb = options.maxOldGenerationSizeMb ?? DEFAULT_MAX_OLD_GENERATION_MB;
  const modules = (options.modules ?? [BUILT_IN_THREAD_ACTIONS]).map(toModuleUrl);
  const piscina = new Piscina<ThreadTask, ThreadOutcome>({
    filename: WORKER_FILE,
    maxThreads,
    minThreads: Math.min(options.minThreads ?? 0, maxThreads),
    idleTimeout: options.idleTimeoutMs ?? 30_000,
    resourceLimits: { maxOldGenerationSizeMb },
    closeTimeout: options.closeTimeoutMs ?? 10_000,
    // Task messages arrive as events; with the default ("sync"), an idle thread blocks in
    // Atomics.wait, and a task's own timers and promises could not run between tasks.
    atomics: "disabled",
    // TypeScript in a thread: this package run from source, or a user's action module in .ts.
    ...(fromSource || modules.some((m) => /\.[cm]?ts$/.test(new URL(m).pathname)) ? { execArgv: ["--import", tsxPreload()] } : {}),
  });
  // Runs that wait for a thread (their action has not started yet), with how to fail them.
  const waiting = new Set<(error: unknown) => void>();
  // Piscina reports failures that no task saw as 'error' events (unheard, they would crash the
  // process): a thread that died while idle, or one that failed to start (a module that does
  // not load). Piscina then keeps queued tasks waiting for a thread that never comes, so fail them.
  piscina.on("error", (error: unknown) => {
    options.logger?.warn({ err: error }, "action thread failed");
    for (const fail of [...waiting]) fail(error);
  });
  let closed = false;

  async function run(actionName: string, input: unknown, runOptions: ThreadRunOptions = {}): Promise<unknown> {
    const { signal, timeLimitMs, onProgress } = runOptions;
    if (closed) throw new Error("The action thread pool is closed");
    signal?.throwIfAborted();
    const abort = new AbortController();
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      abort.abort(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let threadFailure: { error: unknown } | undefined;
    const fail = (error: unknown) => {
      threadFailure = { error };
      abort.abort(error);
    };
    waiting.add(fail);
    const { port1, port2 } = new MessageChannel();
    const onMessage = (message: ThreadMessage) => {
      if (message.type === "started") {
        waiting.delete(fail);
        if (timeLimitMs !== undefined && timer === undefined) {
          timer = setTimeout(() => {
            timedOut = true;
            abort.abort(timeoutError(actionName, timeLimitMs));
          }, timeLimitMs);
        }
      } else if (message.type === "progress") {
        try {
          onProgress?.(message.percent);
        } catch {
          // A failing progress listener does not fail the action.
        }
      }
    };
    port1.on("message", onMessage);
    try {
      const outcome = await piscina.run(
        { action: actionName, input, modules, port: port2 },
        { signal: abort.signal, transferList: [port2] },
      );
      if (outcome.ok) return outcome.result;
      throw deserializeError(outcome.error);
    } catch (error) {
      if (timedOut) throw timeoutError(actionName, timeLimitMs ?? 0);
      if (cancelled) throw signal?.reason;
      if (threadFailure) {
        throw new Error(`No thread could run action "${actionName}": ${errorMessage(threadFailure.error)}`, { cause: threadFailure.error });
      }
      if (isOutOfMemory(error)) {
        throw new ActionError(
          "ACTION_OUT_OF_MEMORY",
          `Action "${actionName}" ran out of memory (limit ${maxOldGenerationSizeMb} MB of heap per thread)`,
        );
      }
      throw error;
    } finally {
      // The thread's last messages (progress 100) may still wait in the port while its result,
      // which came by another port, is here already: hand them over before closing.
      for (let entry = receiveMessageOnPort(port1); entry; entry = receiveMessageOnPort(port1)) onMessage(entry.message);
      port1.close();
      waiting.delete(fail);
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  return {
    run,
    async close() {
      if (closed) return;
      closed = true;
      await piscina.close({ force: true });
    },
  };
}

function timeoutError(actionName: string, timeLimitMs: number) {
  return new ActionError("ACTION_TIMEOUT", `Action "${actionName}" exceeded its time limit of ${timeLimitMs} ms`);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isOutOfMemory(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_WORKER_OUT_OF_MEMORY";
}

function deserializeError(serialized: SerializedError): Error {
  const error =
    serialized.code !== undefined
      ? new (serialized.name === "RetryableError" ? RetryableError : ActionError)(serialized.code, serialized.message, serialized.details ?? [])
      : Object.assign(new Error(serialized.message), { name: serialized.name });
  if (serialized.stack) error.stack = serialized.stack;
  return error;
}

function toModuleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  return /^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module) ? module : pathToFileURL(module).href;
}

/**
 * A preload for threads that run TypeScript: registers tsx's ESM hooks in the thread.
 * `--import tsx` alone is not enough: on Node < 22 tsx registers its ESM hooks on the main
 * thread only (in a worker it only hooks `require`, which would load the thread's modules as
 * CommonJS copies), so the preload calls tsx's `register()` API explicitly. tsx is resolved
 * from this package, so this works whatever the cwd and whether or not the parent process
 * runs under tsx (vitest forks do not).
 */
function tsxPreload(): string {
  // tsx's ESM API ("tsx/esm/api", import condition); `require.resolve` would pick the CommonJS one.
  const manifestPath = createRequire(import.meta.url).resolve("tsx/package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { exports: Record<string, { import: { default: string } }> };
  const entry = manifest.exports["./esm/api"]?.import.default;
  if (!entry) throw new Error(`tsx (${manifestPath}) has no ESM API to run TypeScript in threads`);
  const api = new URL(entry, pathToFileURL(manifestPath)).href;
  return `data:text/javascript,${encodeURIComponent(`import { register } from ${JSON.stringify(api)}; register();`)}`;
}
