import { z } from "@hono/zod-openapi";
import { findUnstorable, MAX_JSON_DEPTH } from "../core/storable.js";
import { CALLBACK_STATUSES } from "../shared/callbacks.js";
import { ASYNC_REQUEST_STATUSES } from "../shared/status.js";

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    code: z.string(),
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

export const SubmitBodySchema = z
  .object({
    action: z.string().min(1).max(100).openapi({ example: "analyse" }),
    input: z
      .unknown()
      .superRefine((value, ctx) => void storable("input")(value, ctx))
      .openapi({
        description: `The action's input (see GET /api/v1/actions). Strings must be valid Unicode without U+0000; nesting at most ${MAX_JSON_DEPTH} levels.`,
        example: { texts: ["Hello world. Hello world."] },
      }),
    callbackUrl: z
      .string()
      .optional()
      .openapi({
        description: "Where the signed result is POSTed when the request finishes: http(s), no credentials, at most 2048 characters, an address the outbound policy allows",
        maxLength: 2048,
        example: "https://example.com/hooks/ricochet",
      }),
    metadata: z
      .record(z.string(), z.unknown())
      .superRefine((value, ctx) => {
        // First what cannot be stored (this also bounds the depth before anything recurses).
        if (!storable("metadata")(value, ctx)) return;
        if (JSON.stringify(value).length > METADATA_MAX_BYTES) ctx.addIssue({ code: "custom", message: `must be at most ${METADATA_MAX_BYTES} bytes of JSON` });
      })
      .optional()
      .openapi({ description: `Your own data, returned with the request: an object of at most ${METADATA_MAX_BYTES} bytes of JSON, nesting at most ${MAX_JSON_DEPTH} levels`, example: { orderId: "A-17" } }),
  })
  .strict()
  .openapi("SubmitAsyncRequest");

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

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: "Problem", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );

export const IdempotencyHeaderSchema = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
    .optional()
    .openapi({ description: "Retrying with the same key within 24 h returns the first answer instead of a new request" }),
});
