import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { ActionCatalog } from "../../core/actions/catalog.js";
import type { MiddlewareHandler } from "hono";
import { toAsyncRequest } from "../../shared/async-request.js";
import { isFinal } from "../../shared/status.js";
import { documentActions } from "../action-schemas.js";
import type { AppEnv } from "../env.js";
import { invalidRequest } from "../problem.js";
import {
  AsyncRequestSchema,
  CallbackUrlSchema,
  headers,
  IdempotencyHeaderSchema,
  IdParamSchema,
  ListQuerySchema,
  MetadataSchema,
  oauth2,
  problemResponses,
  SubmitBodySchema,
  WaitQuerySchema,
} from "../schemas.js";

const tags = ["Async requests"];
const read = oauth2("read");
const write = oauth2("write");
const single = z.object({ asyncRequest: AsyncRequestSchema });
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** How soon a poller should come back, in seconds. */
const POLL_AFTER_SECONDS = "1";

const submit = createRoute({
  method: "post",
  path: "/api/v1/async",
  operationId: "createAsyncRequest",
  tags,
  security: write,
  summary: "Submit an async request",
  description:
    "The body names one of the deployment's actions (GET /api/v1/actions) and gives its input, which is checked against that action's schema. " +
    "From /docs, \"Try it out\" submits for real: the examples leave callbackUrl out, so nothing is delivered; follow the request with GET or its events.",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { required: true, content: { "application/json": { schema: SubmitBodySchema } } },
  },
  responses: {
    202: { ...json(single, "Accepted; poll the Location, follow its events, or wait for the callback"), headers: headers("Location", "Idempotent-Replayed") },
    ...problemResponses(400, 401, 403, 413, 415, 422, 429, 503),
  },
});

const limits = createRoute({
  method: "get",
  path: "/api/v1/async/limits",
  operationId: "getAsyncLimits",
  tags,
  security: read,
  summary: "Your tenant's limits and how much of them is in use",
  responses: {
    200: json(
      z.object({
        concurrentRequests: z.object({ limit: z.number().int(), count: z.number().int() }),
        queued: z.object({ limit: z.number().int(), count: z.number().int() }),
      }),
      "RUNNING requests against the concurrency limit, QUEUED ones against the queue limit",
    ),
    ...problemResponses(401, 403, 503),
  },
});

const get = createRoute({
  method: "get",
  path: "/api/v1/async/{id}",
  operationId: "getAsyncRequest",
  tags,
  security: read,
  summary: "Get an async request (optionally long-poll with ?wait=N)",
  request: { params: IdParamSchema, query: WaitQuerySchema },
  responses: {
    200: { ...json(single, "The request; Retry-After (when to poll again) is set while it is not finished"), headers: headers("Retry-After") },
    ...problemResponses(401, 403, 404, 422, 503),
  },
});

const result = createRoute({
  method: "get",
  path: "/api/v1/async/{id}/result",
  operationId: "getAsyncRequestResult",
  tags,
  security: read,
  summary: "Get the result of a COMPLETED request",
  request: { params: IdParamSchema },
  responses: {
    200: json(z.record(z.string(), z.unknown()), "`{<resultKey>: result}`, as in the callback body"),
    ...problemResponses(401, 403, 404, 409, 503),
  },
});

const list = createRoute({
  method: "get",
  path: "/api/v1/async",
  operationId: "listAsyncRequests",
  tags,
  security: read,
  summary: "List async requests, newest first",
  request: { query: ListQuerySchema },
  responses: {
    200: json(
      z.object({ asyncRequests: z.array(AsyncRequestSchema), nextCursor: z.string().nullable() }),
      "A page of requests; pass nextCursor as cursor for the next one",
    ),
    ...problemResponses(401, 403, 422, 503),
  },
});

const cancel = createRoute({
  method: "delete",
  path: "/api/v1/async/{id}",
  operationId: "cancelAsyncRequest",
  tags,
  security: write,
  summary: "Cancel a QUEUED or RUNNING request",
  request: { params: IdParamSchema },
  responses: { 200: json(single, "The cancelled request"), ...problemResponses(401, 403, 404, 409, 503) },
});

/**
 * Submit and result are validated as above (any action; the service checks the input against
 * the action's schema) but documented per action of the catalog (src/api/action-schemas.ts).
 */
function registerActionDocuments(app: OpenAPIHono<AppEnv>, catalog: ActionCatalog) {
  const { schemas, submitExamples } = documentActions(catalog);
  app.openAPIRegistry.register("CallbackUrl", CallbackUrlSchema);
  app.openAPIRegistry.register("Metadata", MetadataSchema);
  for (const [name, schema] of Object.entries(schemas)) app.openAPIRegistry.registerComponent("schemas", name, schema);
  const submitBody = { $ref: "#/components/schemas/SubmitAsyncRequest" };
  app.openAPIRegistry.registerPath({
    ...submit,
    request: {
      ...submit.request,
      body: { required: true, content: { "application/json": { schema: submitBody, ...(Object.keys(submitExamples).length ? { examples: submitExamples } : {}) } } },
    },
  });
  app.openAPIRegistry.registerPath({
    ...result,
    responses: { ...result.responses, 200: { ...result.responses[200], content: { "application/json": { schema: { $ref: "#/components/schemas/AsyncRequestResult" } } } } },
  });
}

/**
 * Checks Idempotency-Key against its documented schema, ahead of the body as a header validator
 * would be. A header validator gathers every header of the request into an object first; this
 * reads the one header the route uses.
 */
const idempotencyKeyHeader: MiddlewareHandler<AppEnv> = async (c, next) => {
  const checked = IdempotencyHeaderSchema.safeParse({ "idempotency-key": c.req.header("idempotency-key") });
  if (!checked.success) throw invalidRequest("header", checked.error);
  await next();
};

export function registerAsyncRequestRoutes(app: OpenAPIHono<AppEnv>, catalog: ActionCatalog) {
  registerActionDocuments(app, catalog);
  const { headers: _documented, ...submitRequest } = submit.request;
  app.openapi({ ...submit, request: submitRequest, middleware: [idempotencyKeyHeader], hide: true }, async (c) => {
    const key = c.req.header("idempotency-key");
    const outcome = await c.get("services").asyncRequests.submit(c.get("caller"), c.req.valid("json"), key);
    c.header("Location", `/api/v1/async/${outcome.id}`);
    if (outcome.replayed) c.header("Idempotent-Replayed", "true");
    return c.json(outcome.body as z.infer<typeof single>, 202);
  });

  // Registered before /{id} so that "limits" is never taken for an id.
  app.openapi(limits, async (c) => c.json(await c.get("services").asyncRequests.limits(c.get("caller")), 200));

  app.openapi(list, async (c) => {
    const query = c.req.valid("query");
    const page = await c.get("services").asyncRequests.list(c.get("caller"), {
      ...query,
      from: query.from ? new Date(query.from) : undefined,
      to: query.to ? new Date(query.to) : undefined,
    });
    return c.json({ asyncRequests: page.rows.map(toAsyncRequest), nextCursor: page.nextCursor }, 200);
  });

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    const { wait } = c.req.valid("query");
    // Answers at the first change, the end of the wait, the client leaving, or a shutdown.
    const signal = AbortSignal.any([c.req.raw.signal, c.get("services").shuttingDown]);
    const row = await c.get("services").asyncRequests.waitForChange(c.get("caller"), id, wait * 1000, signal);
    if (!isFinal(row.status)) c.header("Retry-After", POLL_AFTER_SECONDS);
    return c.json({ asyncRequest: toAsyncRequest(row) }, 200);
  });

  app.openapi({ ...result, hide: true }, async (c) => {
    const { resultKey, result } = await c.get("services").asyncRequests.result(c.get("caller"), c.req.valid("param").id);
    return c.json({ [resultKey]: result }, 200);
  });

  app.openapi(cancel, async (c) => {
    const row = await c.get("services").asyncRequests.cancel(c.get("caller"), c.req.valid("param").id);
    return c.json({ asyncRequest: toAsyncRequest(row) }, 200);
  });
}
