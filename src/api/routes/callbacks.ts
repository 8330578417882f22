import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { toAsyncRequest } from "../../shared/async-request.js";
import type { AppEnv } from "../env.js";
import { AsyncRequestSchema, IdParamSchema, oauth2, problemResponses } from "../schemas.js";

const tags = ["Callbacks"];

const AttemptSchema = z
  .object({
    series: z.number().int().openapi({ description: "1 for the first delivery, +1 per redelivery" }),
    attempt: z.number().int().openapi({ description: "1-based within the series" }),
    webhookId: z.string(),
    url: z.string(),
    startedAt: z.string().openapi({ format: "date-time", example: "2026-11-23T10:00:01.000Z" }),
    durationMs: z.number().int(),
    statusCode: z.number().int().nullable(),
    errorClass: z.string().nullable().openapi({ description: "http_status, timeout, connection_refused, connection_reset, dns_failure, tls_error, blocked_address, invalid_url, network_error" }),
    errorMessage: z.string().nullable(),
    responseBody: z.string().nullable().openapi({ description: "The first 16 KiB of the receiver's answer" }),
    delivered: z.boolean(),
  })
  .openapi("CallbackAttempt");

const attempts = createRoute({
  method: "get",
  path: "/api/v1/async/{id}/callback/attempts",
  operationId: "listCallbackAttempts",
  tags,
  security: oauth2("read"),
  summary: "Every delivery attempt of the request's callback",
  request: { params: IdParamSchema },
  responses: {
    200: { description: "Attempts, oldest first", content: { "application/json": { schema: z.object({ attempts: z.array(AttemptSchema) }) } } },
    ...problemResponses(401, 403, 404, 503),
  },
});

const redeliver = createRoute({
  method: "post",
  path: "/api/v1/async/{id}/callback/redeliver",
  operationId: "redeliverCallback",
  tags,
  security: oauth2("write"),
  summary: "Deliver the callback again: a new attempt series (409 while one is in flight)",
  request: { params: IdParamSchema },
  responses: {
    202: { description: "A new series is queued", content: { "application/json": { schema: z.object({ asyncRequest: AsyncRequestSchema }) } } },
    ...problemResponses(401, 403, 404, 409, 503),
  },
});

export function registerCallbackRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(attempts, async (c) => {
    const rows = await c.get("services").asyncRequests.callbackAttempts(c.get("caller"), c.req.valid("param").id);
    return c.json(
      {
        attempts: rows.map((row) => ({
          series: row.series,
          attempt: row.attempt,
          webhookId: row.webhookId,
          url: row.url,
          startedAt: row.startedAt.toISOString(),
          durationMs: row.durationMs,
          statusCode: row.statusCode,
          errorClass: row.errorClass,
          errorMessage: row.errorMessage,
          responseBody: row.responseBody,
          delivered: row.delivered,
        })),
      },
      200,
    );
  });

  app.openapi(redeliver, async (c) => {
    const row = await c.get("services").asyncRequests.redeliver(c.get("caller"), c.req.valid("param").id);
    return c.json({ asyncRequest: toAsyncRequest(row) }, 202);
  });
}
