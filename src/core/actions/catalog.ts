import { z } from "zod";
import { analyse } from "./analyse.js";
import { echo } from "./echo.js";
import { createHttpAction } from "./http.js";
import type { ActionDefinition } from "./types.js";

/** Every action this deployment offers, by name. Add an action here and nowhere else. */
export type ActionCatalog = ReadonlyMap<string, ActionDefinition>;

export function createActionCatalog(options: { httpUpstreams?: readonly string[] } = {}): ActionCatalog {
  const actions = [analyse, echo] as ActionDefinition[];
  // The http action exists only where an operator allowed some upstreams.
  if (options.httpUpstreams?.length) actions.push(createHttpAction(options.httpUpstreams) as unknown as ActionDefinition);
  return new Map(actions.map((action) => [action.name, action]));
}

export function describeActions(catalog: ActionCatalog) {
  return [...catalog.values()].map((action) => ({
    name: action.name,
    description: action.description,
    resultKey: action.resultKey,
    inputSchema: z.toJSONSchema(action.input, { io: "input" }),
  }));
}
