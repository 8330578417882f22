import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { describeActions } from "../../core/actions/catalog.js";
import type { AppEnv } from "../env.js";
import { oauth2, problemResponses } from "../schemas.js";

const JsonSchema = z.record(z.string(), z.unknown()).openapi({ description: "A JSON Schema (draft 2020-12)" });

const ActionSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    resultKey: z.string().openapi({ description: "The key of the result in the callback body and in GET .../result" }),
    inputSchema: JsonSchema,
    resultSchema: JsonSchema.nullable().openapi({ description: "null when the action declares no result schema" }),
    policy: z.object({
      runIn: z.enum(["loop", "thread"]),
      timeLimitMs: z.number().int().nullable().openapi({ description: "null: ACTION_TIME_LIMIT" }),
      concurrency: z.number().int().nullable().openapi({ description: "Runs at once per worker process; null: no limit of its own" }),
      retry: z.object({ attempts: z.number().int(), backoffMs: z.array(z.number().int()).readonly() }),
      maxInputBytes: z.number().int().nullable(),
    }),
  })
  .openapi("Action");

const listActions = createRoute({
  method: "get",
  path: "/api/v1/actions",
  operationId: "listActions",
  tags: ["Actions"],
  security: oauth2("read"),
  summary: "The actions this deployment offers, with their input and result JSON Schema and policy",
  responses: {
    200: { description: "Actions", content: { "application/json": { schema: z.object({ actions: z.array(ActionSchema) }) } } },
    ...problemResponses(401, 403, 503),
  },
});

export function registerActionRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(listActions, (c) => c.json({ actions: describeActions(c.get("services").catalog) }, 200));
}
