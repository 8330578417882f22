import type { Context } from "hono";
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";

import { QUEUE_NAMES } from "../../shared/queues.js";
import type { AppEnv } from "../env.js";
import { problemResponses, QueueCounts } from "../schemas.js";

const tags = ["Admin"];
// Either scheme: the token as a bearer token (scripts) or as the Basic password (a browser).
const security: Record<string, string[]>[] = [{ adminToken: [] }, { adminBasic: [] }];


const QueueSchema = z
  .object({
    name: z.enum(Object.values(QUEUE_NAMES)),
    paused: z.boolean().openapi({ description: "Paused: no worker of any process takes new jobs; active ones finish" }),
    counts: QueueCounts,
  })
  .openapi("Queue");

const QueueParam = z.object({
  queue: z
    .string()
    .max(100)
    .openapi({ param: { name: "queue", in: "path" }, example: "jobs", description: "`jobs` or `callbacks`; any other name is 404" }),
});

const json = <T extends z.ZodType>(description: string, schema: T) => ({ description, content: { "application/json": { schema } } });

const action = (name: string) => ({
  method: "post" as const, path: `/admin/api/queues/{queue}/${name}`, tags, security,
  request: { params: QueueParam },
});
const actionResponses = <T extends z.ZodType>(schema: T) => ({ 200: json("The queue after the change", schema), ...problemResponses(401, 404) });

const routes = {
  list: createRoute({
    method: "get", path: "/admin/api/queues", tags, security, operationId: "listQueues",
    summary: "The jobs and callbacks queues: paused or not, and job counts by state",
    responses: { 200: json("Every queue", z.object({ queues: z.array(QueueSchema) }).openapi("QueueList")), ...problemResponses(401) },
  }),
  pause: createRoute({
    ...action("pause"), operationId: "pauseQueue", summary: "Pause a queue",
    description: "Workers of every process stop taking new jobs of this queue; jobs already running finish. Submits are still accepted and wait.",
    responses: actionResponses(QueueSchema),
  }),
  resume: createRoute({
    ...action("resume"), operationId: "resumeQueue", summary: "Resume a paused queue", description: "Workers take jobs of the queue again.",
    responses: actionResponses(QueueSchema),
  }),
  retryFailed: createRoute({
    ...action("retry-failed"), operationId: "retryFailedJobs", summary: "Move the queue's failed jobs back to waiting",
    description:
      "Each failed job gets one more attempt. A callbacks job whose series is EXHAUSTED then completes without an attempt: redeliver those with POST /admin/v1/tenants/{tenantId}/callbacks/redeliver.",
    responses: actionResponses(QueueSchema.extend({ retried: z.number().int().min(0).openapi({ description: "How many failed jobs were moved back" }) }).openapi("QueueRetried")),
  }),
};

/** Queue control for operators; the admin guard in app.ts covers it. */
export function registerAdminQueueRoutes(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "adminBasic", { type: "http", scheme: "basic", description: "Any user name, ADMIN_TOKEN as the password" });
  const control = (c: Context<AppEnv>) => c.get("services").queueControl;
  app.openapi(routes.list, async (c) => c.json({ queues: await control(c).list() }, 200));
  app.openapi(routes.pause, async (c) => c.json(await control(c).pause(c.req.valid("param").queue), 200));
  app.openapi(routes.resume, async (c) => c.json(await control(c).resume(c.req.valid("param").queue), 200));
  app.openapi(routes.retryFailed, async (c) => c.json(await control(c).retryFailed(c.req.valid("param").queue), 200));
}
