import { z, type OpenAPIHono } from "@hono/zod-openapi";
import { findUnstorable, MAX_JSON_DEPTH } from "../core/storable.js";
import type { Scope } from "../auth/scopes.js";
import { CALLBACK_STATUSES } from "../shared/callbacks.js";
import { ERROR_STATUS, type ErrorCode } from "../shared/errors.js";
import { QUEUE_STATES } from "../shared/queues.js";
import { ASYNC_REQUEST_STATUSES } from "../shared/status.js";

/**
 * OpenAPI 3.1 objects as the document generator types them, reached through @hono/zod-openapi
 * (their own package, openapi3-ts, is not a dependency of ours).
 */
export type OpenAPIDocument = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;
type Components = NonNullable<OpenAPIDocument["components"]>;
export type SchemaObject = NonNullable<Components["schemas"]>[string];
export type ExampleObject = NonNullable<Components["examples"]>[string];
export type HeaderObject = NonNullable<Components["headers"]>[string];

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const isoDate = z.string().openapi({ format: "date-time", example: "2026-11-23T10:00:00.000Z" });

export const AsyncRequestSchema = z
  .object({
    id: z.string().uuid(),
    action: z.string(),
    status: z.enum(ASYNC_REQUEST_STATUSES),
    createdBy: z.object({ clientId: z.string() }),
    dateCreated: isoDate,
    dateStarted: isoDate.nullable(),
    dateFinished: isoDate.nullable(),
    progress: z.number().int().min(0).max(100).nullable(),
    attempts: z.number().int().min(0).openapi({ description: "Runs of the action so far: retries under its retry policy and re-runs after a worker crash count" }),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    callbackUrl: z.string().nullable(),
    callback: z
      .object({
        status: z.enum(CALLBACK_STATUSES),
        attempts: z.number().int(),
        lastStatusCode: z.number().int().nullable(),
        lastError: z.string().nullable(),
        lastAttemptAt: isoDate.nullable(),
        nextAttemptAt: isoDate.nullable(),
      })
      .nullable()
      .openapi({ description: "Delivery of the callback to callbackUrl; null without one" }),
    asyncResponse: z
      .object({
        dateCreated: isoDate,
        errorCode: z.string().nullable(),
        errorDesc: z.string().nullable(),
        errorDetails: z.array(z.unknown()),
        warnings: z.array(z.unknown()),
      })
      .nullable(),
  })
  .openapi("AsyncRequest");

const METADATA_MAX_BYTES = 16 * 1024;

/** Refuses what cannot be stored (NUL, lone surrogates, nesting past MAX_JSON_DEPTH): see src/core/storable.ts. */
const storable = (path: string) => (value: unknown, ctx: z.RefinementCtx): boolean => {
  const problem = findUnstorable(value, path);
  if (problem) ctx.addIssue({ code: "custom", message: `${problem.path.slice(path.length + 1) || "the value"} ${problem.message}`, path: problem.path.split(".").slice(1) });
  return !problem;
};

/** Where the result is POSTed. The example host is reserved (RFC 2606): it never resolves. */
export const CallbackUrlSchema = z
  .string()
  .openapi("CallbackUrl", {
    description:
      "Where the signed result is POSTed when the request finishes: http(s), no credentials, at most 2048 characters, an address the outbound policy allows. " +
      "A callback that cannot be delivered is retried for hours: leave it out when trying the API.",
    maxLength: 2048,
    example: "https://receiver.example/hooks/ricochet",
  });

export const MetadataSchema = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
    // First what cannot be stored (this also bounds the depth before anything recurses).
    if (!storable("metadata")(value, ctx)) return;
    if (JSON.stringify(value).length > METADATA_MAX_BYTES) ctx.addIssue({ code: "custom", message: `must be at most ${METADATA_MAX_BYTES} bytes of JSON` });
  })
  .openapi("Metadata", {
    description: `Your own data, returned with the request: an object of at most ${METADATA_MAX_BYTES} bytes of JSON, nesting at most ${MAX_JSON_DEPTH} levels`,
    example: { orderId: "A-17" },
  });

/** How an action's `input` is described in each submit variant. */
export const INPUT_DESCRIPTION = `The action's input (see GET /api/v1/actions). Strings must be valid Unicode without U+0000; nesting at most ${MAX_JSON_DEPTH} levels.`;

/**
 * What POST /api/v1/async validates: any action name and any input, which the service then
 * checks against that action's own schema (with errors that name the action). The document
 * shows the same body per action instead (src/api/action-schemas.ts).
 */
export const SubmitBodySchema = z
  .object({
    action: z.string().min(1).max(100),
    input: z.unknown().superRefine((value, ctx) => void storable("input")(value, ctx)),
    callbackUrl: CallbackUrlSchema.optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict();

export const IdParamSchema = z.object({
  id: z
    .string()
    .max(100)
    .openapi({ param: { name: "id", in: "path" }, example: "0193a1b2-1c2d-7e8f-9a0b-1c2d3e4f5a6b" }),
});

/**
 * A point in time for list filters: `2026-11-29` (the start of that day, UTC), a date-time with
 * an offset, or one without (read as UTC). Normalised to an ISO string in UTC.
 */
const instant = z
  .string()
  .max(40)
  .transform((text, ctx) => {
    const utc = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : /T[\d:.]+$/.test(text) ? `${text}Z` : text;
    const date = z.iso.datetime({ offset: true }).safeParse(utc).success ? new Date(utc) : undefined;
    if (!date || Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: "custom", message: "must be an ISO 8601 date (2026-11-29) or date-time (2026-11-29T10:00:00Z)" });
      return z.NEVER;
    }
    return date.toISOString();
  });

/** Accepts `status=A,B` and `status=A&status=B` alike. */
const csv = <T extends z.ZodType>(item: T) =>
  z
    .preprocess((value) => {
      if (value === undefined) return undefined;
      const parts = (Array.isArray(value) ? value : [value]).flatMap((part) => String(part).split(","));
      return parts.map((part) => part.trim()).filter(Boolean);
    }, z.array(item).min(1).optional())
    .openapi({ type: "string" });

export const ListQuerySchema = z.object({
  status: csv(z.enum(ASYNC_REQUEST_STATUSES)).openapi({ description: "Comma-separated statuses", example: "QUEUED,RUNNING" }),
  action: csv(z.string().min(1).max(100)).openapi({ description: "Comma-separated action names" }),
  callbackStatus: csv(z.enum(CALLBACK_STATUSES)).openapi({ description: "Comma-separated callback statuses, e.g. EXHAUSTED" }),
  from: instant.optional().openapi({ description: "Created at or after: an ISO 8601 date (the start of that day, UTC) or date-time (UTC unless it has an offset)", example: "2026-11-29" }),
  to: instant.optional().openapi({ description: "Created before: an ISO 8601 date (the start of that day, UTC) or date-time (UTC unless it has an offset)", example: "2026-11-30T12:00:00Z" }),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(500).optional().openapi({ description: "nextCursor from the previous page" }),
});

export const WaitQuerySchema = z.object({
  wait: z.coerce
    .number()
    .min(0)
    .max(30)
    .default(0)
    .openapi({ description: "Seconds to wait for a status change before answering (long-poll), at most 30" }),
});

/**
 * The response headers the service sets, as components of the document (`header(name)` refers
 * to one). X-Request-Id is on every response and is added to each by the document builder.
 */
export const RESPONSE_HEADERS = {
  "X-Request-Id": {
    description: "The request's id (yours, if you sent an acceptable X-Request-Id): quote it when reporting a problem; it is in the service's logs",
    schema: { type: "string" },
  },
  "Retry-After": { description: "Seconds to wait before trying again", schema: { type: "integer", minimum: 0 } },
  "WWW-Authenticate": {
    description:
      'The challenge: `Bearer realm="ricochet"`, with `error="invalid_token"` or `error="insufficient_scope"` and the scope needed (RFC 6750 §3); ' +
      '`Bearer realm="ricochet-admin", Basic realm="ricochet admin"` on the admin API; `Bearer realm="ricochet-metrics"` on /metrics; `Basic realm="ricochet"` on the token endpoints (RFC 6749 §5.2)',
    schema: { type: "string" },
  },
  Location: { description: "The request's URL, to poll", schema: { type: "string" } },
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key (nothing new was created); absent otherwise",
    schema: { type: "string", enum: ["true"] },
  },
  "Cache-Control": { description: "`no-store` on answers that carry secrets or tokens; `no-cache` on event streams", schema: { type: "string" } },
  Pragma: { description: "`no-cache`, for HTTP/1.0 caches (RFC 6749 §5.1)", schema: { type: "string" } },
} satisfies Record<string, HeaderObject>;

export type ResponseHeaderName = keyof typeof RESPONSE_HEADERS;

/** A reference to one of RESPONSE_HEADERS, for a response's `headers`. */
export const headers = (...names: ResponseHeaderName[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "Bad request: malformed JSON, or a URL holding %00",
  401: "No valid credentials: missing, unknown, expired or revoked (see WWW-Authenticate)",
  403: "The token lacks the scope this operation needs",
  404: "Not found (or not yours)",
  409: "Conflict with the current state",
  413: "The request body is larger than BODY_LIMIT (the connection is closed)",
  415: "The body is not application/json",
  422: "Invalid request: `errors` names each field",
  429: "A limit is reached: wait for Retry-After",
  503: "A dependency (Redis, the database) is unavailable: wait for Retry-After",
};

/** Which headers come with a problem of a status. */
const PROBLEM_HEADERS: Record<number, ResponseHeaderName[]> = { 401: ["WWW-Authenticate"], 403: ["WWW-Authenticate"], 429: ["Retry-After"], 503: ["Retry-After"] };

/** RFC 9457 problem responses, with the headers that come with each status. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: PROBLEM_DESCRIPTIONS[status] ?? "Problem",
        ...(PROBLEM_HEADERS[status] ? { headers: headers(...PROBLEM_HEADERS[status]) } : {}),
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
    ]),
  );

/** What each OAuth2 scope allows: the /api middleware in app.ts asks `read` of GET and HEAD, `write` of the rest. */
export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  read: "Read your requests, their results, events and callback attempts, your limits and the actions",
  write: "Submit and cancel requests, redeliver callbacks",
};

/** The security of an /api operation: an OAuth2 client-credentials token with `scope`. */
export const oauth2 = (scope: Scope) => [{ oauth2: [scope] }];

export const IdempotencyHeaderSchema = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
    .optional()
    .openapi({ description: "Retrying with the same key within 24 h returns the first answer instead of a new request" }),
});

/** A queue's job counts by state (admin API, dashboard API). */
export const QueueCounts = z
  .object(Object.fromEntries(QUEUE_STATES.map((state) => [state, z.number().int().min(0)])) as Record<(typeof QUEUE_STATES)[number], z.ZodNumber>)
  .openapi("QueueCounts");
