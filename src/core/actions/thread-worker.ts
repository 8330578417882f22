/**
 * Runs in a worker thread of the action thread pool (thread-pool.ts); piscina calls the
 * default export once per task. It imports the pool's action modules (once per thread),
 * looks the action up by name among their exports with `runIn: "thread"`, and runs it with
 * thread-side helpers:
 *
 * - `signal` is never aborted from in here: a task is cancelled (or timed out) by the pool
 *   terminating the whole thread;
 * - `progress(percent)` posts the figure back to the pool, which hands it to the caller's
 *   `onProgress`; it resolves at once and never fails;
 * - `clock` is the system clock;
 * - `logger` is silent (threads write no logs; an action reports through its result or error);
 * - `http.send` throws: thread actions do not call out.
 *
 * Errors cross back as plain data (structured cloning keeps neither the class nor `code`
 * and `details`), and the pool rebuilds them: an `ActionError` stays an `ActionError`.
 */
import type { MessagePort } from "node:worker_threads";
import type { Logger } from "pino";
import { systemClock } from "../../shared/clock.js";
import { exportedActions } from "./module-actions.js";
import { ActionError, isActionDefinition, type ActionDefinition, type ActionHelpers } from "./types.js";

export type ThreadTask = {
  action: string;
  input: unknown;
  /** URLs of the modules whose exported thread actions this thread offers. */
  modules: readonly string[];
  /** Where the thread reports that the action started, and its progress. */
  port: MessagePort;
};

export type ThreadMessage = { type: "started" } | { type: "progress"; percent: number };

export type SerializedError = { name: string; message: string; stack?: string; code?: string; details?: unknown[] };

export type ThreadOutcome = { ok: true; result: unknown } | { ok: false; error: SerializedError };

const registries = new Map<string, Promise<ReadonlyMap<string, ActionDefinition>>>();

export default async function runThreadTask(task: ThreadTask): Promise<ThreadOutcome> {
  const { port } = task;
  try {
    const action = (await registryOf(task.modules)).get(task.action);
    if (!action) throw new Error(`No thread action "${task.action}" in ${task.modules.join(", ")}`);
    port.postMessage({ type: "started" } satisfies ThreadMessage);
    return { ok: true, result: await action.run(task.input, threadHelpers(port)) };
  } catch (error) {
    return { ok: false, error: serializeError(error) };
  } finally {
    port.close();
  }
}

function registryOf(modules: readonly string[]): Promise<ReadonlyMap<string, ActionDefinition>> {
  const key = modules.join("\n");
  let registry = registries.get(key);
  if (!registry) {
    registry = loadRegistry(modules);
    registries.set(key, registry);
    // A module that failed to load is tried again by the next task.
    registry.catch(() => registries.delete(key));
  }
  return registry;
}

async function loadRegistry(modules: readonly string[]): Promise<ReadonlyMap<string, ActionDefinition>> {
  const registry = new Map<string, ActionDefinition>();
  for (const specifier of modules) {
    for (const value of exportedActions(await import(specifier))) {
      if (!isThreadAction(value)) continue;
      const known = registry.get(value.name);
      if (known && known !== value) throw new Error(`Two thread actions are named "${value.name}" (in ${modules.join(", ")})`);
      registry.set(value.name, value);
    }
  }
  return registry;
}

function isThreadAction(value: unknown): value is ActionDefinition {
  return isActionDefinition(value) && value.runIn === "thread";
}

function threadHelpers(port: MessagePort): ActionHelpers {
  return {
    signal: new AbortController().signal,
    progress: async (percent) => {
      try {
        port.postMessage({ type: "progress", percent } satisfies ThreadMessage);
      } catch {
        // The pool no longer listens: nothing to report to.
      }
    },
    clock: systemClock,
    logger: silentLogger,
    http: {
      send: () => {
        throw new ActionError("THREAD_NO_OUTBOUND", "Actions that run in a thread cannot make outbound calls");
      },
      timeoutMs: 0,
      maxBodyBytes: 0,
    },
  };
}

const noop = () => {};
const silentLogger = {
  level: "silent",
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  silent: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
} as unknown as Logger;

function serializeError(error: unknown): SerializedError {
  if (error instanceof ActionError) {
    return { name: error.name, message: error.message, stack: error.stack, code: error.code, details: cloneable(error.details) };
  }
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: "Error", message: String(error) };
}

function cloneable(details: unknown[]): unknown[] {
  try {
    return structuredClone(details);
  } catch {
    return [];
  }
}
