import { createHash } from "node:crypto";
import { z } from "zod";
import { analyse } from "./analyse.js";
import { echo } from "./echo.js";
import { createHttpAction } from "./http.js";
import type { ActionDefinition } from "./types.js";

/** Every action this deployment offers, by name. Built here, once, and checked as a whole. */
export type ActionCatalog = ReadonlyMap<string, ActionDefinition>;

/** The actions compiled into Ricochet, by name (BUILTIN_ACTIONS picks among them). */
export const BUILTIN_ACTIONS = ["echo", "analyse", "http"] as const;
export type BuiltinActionName = (typeof BUILTIN_ACTIONS)[number];

/** A catalog that cannot be used: every problem found, each naming the action or module. */
export class CatalogError extends Error {
  override name = "CatalogError";
  constructor(readonly problems: string[]) {
    super(`The action catalog is not valid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** An action and where it came from (a module URL, "built-in", or "createRicochet"). */
export type SourcedAction = { action: ActionDefinition; source: string };

export type CatalogOptions = {
  /** Built-in actions to offer (default: all; `http` only where upstreams are configured). */
  builtins?: readonly string[] | undefined;
  /** Upstreams of the `http` action (HTTP_ACTION_UPSTREAMS). */
  httpUpstreams?: readonly string[];
  /** User actions, from ACTIONS modules or createRicochet. */
  actions?: readonly SourcedAction[];
};

const NAME = /^[a-z][a-z0-9_.-]{0,63}$/i;

export function createActionCatalog(options: CatalogOptions = {}): ActionCatalog {
  const problems: string[] = [];
  const chosen: SourcedAction[] = [];
  const builtins = options.builtins ?? BUILTIN_ACTIONS.filter((name) => name !== "http" || options.httpUpstreams?.length);
  for (const name of builtins) {
    if (name === "echo") chosen.push({ action: echo as ActionDefinition, source: "built-in" });
    else if (name === "analyse") chosen.push({ action: analyse as ActionDefinition, source: "built-in" });
    else if (name === "http") {
      // The http action exists only where an operator allowed some upstreams.
      if (options.httpUpstreams?.length) chosen.push({ action: createHttpAction(options.httpUpstreams) as unknown as ActionDefinition, source: "built-in" });
      else problems.push('BUILTIN_ACTIONS: "http" needs HTTP_ACTION_UPSTREAMS (the upstreams it may call)');
    } else problems.push(`BUILTIN_ACTIONS: there is no built-in action "${name}" (there are: ${BUILTIN_ACTIONS.join(", ")})`);
  }
  chosen.push(...(options.actions ?? []));

  const catalog = new Map<string, ActionDefinition>();
  const sources = new Map<string, string>();
  for (const { action, source } of chosen) {
    const label = `action "${String(action?.name)}" (${source})`;
    const before = problems.length;
    problems.push(...checkAction(action, label));
    if (problems.length > before) continue;
    const known = sources.get(action.name);
    if (known !== undefined) {
      problems.push(`action "${action.name}" is defined twice: in ${known} and in ${source}`);
      continue;
    }
    if (action.runIn === "thread" && !/^(file|data|node):|^built-in$/.test(source)) {
      problems.push(`${label}: runs in a thread, so it must be loaded from a module (ACTIONS, or actionModules of createRicochet) that each thread can import`);
      continue;
    }
    sources.set(action.name, source);
    catalog.set(action.name, action);
  }
  if (problems.length) throw new CatalogError(problems);
  return catalog;
}

/** What is wrong with one definition (empty when nothing is). */
function checkAction(action: ActionDefinition, label: string): string[] {
  const problems: string[] = [];
  const positiveInt = (value: unknown) => Number.isInteger(value) && (value as number) > 0;
  if (typeof action.name !== "string" || !NAME.test(action.name)) problems.push(`${label}: name must match ${NAME} (letters, digits, _ . -)`);
  if (typeof action.description !== "string" || !action.description.trim()) problems.push(`${label}: needs a description`);
  if (typeof action.resultKey !== "string" || !NAME.test(action.resultKey) || action.resultKey === "asyncRequest") {
    problems.push(`${label}: resultKey must be a name (letters, digits, _ . -) other than "asyncRequest"`);
  }
  if (typeof action.run !== "function") problems.push(`${label}: run must be a function`);
  for (const [field, schema] of [["input", action.input], ["result", action.result]] as const) {
    if (field === "result" && schema === undefined) continue;
    if (typeof (schema as z.ZodType | undefined)?.safeParse !== "function") {
      problems.push(`${label}: ${field} must be a zod schema`);
      continue;
    }
    try {
      z.toJSONSchema(schema as z.ZodType, { io: field === "input" ? "input" : "output" });
    } catch (error) {
      problems.push(`${label}: its ${field} schema cannot be described as JSON Schema (${(error as Error).message})`);
    }
  }
  if (action.runIn !== undefined && action.runIn !== "loop" && action.runIn !== "thread") problems.push(`${label}: runIn must be "loop" or "thread"`);
  if (action.timeLimitMs !== undefined && !positiveInt(action.timeLimitMs)) problems.push(`${label}: timeLimitMs must be a positive integer`);
  if (action.concurrency !== undefined && !positiveInt(action.concurrency)) problems.push(`${label}: concurrency must be a positive integer`);
  if (action.maxInputBytes !== undefined && !positiveInt(action.maxInputBytes)) problems.push(`${label}: maxInputBytes must be a positive integer`);
  if (action.retry !== undefined) {
    const { attempts, backoffMs } = action.retry;
    if (!positiveInt(attempts) || attempts > 100) problems.push(`${label}: retry.attempts must be an integer from 1 to 100`);
    if (backoffMs !== undefined && (!Array.isArray(backoffMs) || backoffMs.length === 0 || !backoffMs.every((ms) => Number.isInteger(ms) && ms >= 0))) {
      problems.push(`${label}: retry.backoffMs must be a non-empty list of whole milliseconds`);
    }
  }
  return problems;
}

/** The delay before the `retry`-th retry (1-based) of an action, from its policy. */
export function retryBackoffMs(action: ActionDefinition, retry: number): number {
  const delays = action.retry?.backoffMs ?? [1_000];
  return delays[Math.min(retry, delays.length) - 1]!;
}

/**
 * The catalog's fingerprint: names, schemas, result keys and policies, so that processes of one
 * deployment can tell whether they offer the same actions (see catalog-registry.ts).
 */
export function catalogFingerprint(catalog: ActionCatalog): string {
  const described = describeActions(catalog).map(({ description: _d, ...rest }) => rest);
  return createHash("sha256").update(JSON.stringify(described)).digest("hex").slice(0, 16);
}

export function describeActions(catalog: ActionCatalog) {
  return [...catalog.values()].map((action) => ({
    name: action.name,
    description: action.description,
    resultKey: action.resultKey,
    inputSchema: z.toJSONSchema(action.input, { io: "input" }),
    resultSchema: action.result ? z.toJSONSchema(action.result, { io: "output" }) : null,
    policy: {
      runIn: action.runIn ?? "loop",
      timeLimitMs: action.timeLimitMs ?? null,
      concurrency: action.concurrency ?? null,
      retry: { attempts: action.retry?.attempts ?? 1, backoffMs: action.retry?.backoffMs ?? [1_000] },
      maxInputBytes: action.maxInputBytes ?? null,
    },
  }));
}
