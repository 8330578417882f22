import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { CallbackStatus } from "../shared/callbacks.js";
import type { AsyncRequestStatus } from "../shared/status.js";

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: "date" });

/** Tenants own API clients and requests. Limits are null when the configured default applies. */
export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  maxConcurrent: integer("max_concurrent"),
  maxQueued: integer("max_queued"),
  createdAt: ts("created_at").notNull().defaultNow(),
  /**
   * How many of the tenant's requests are QUEUED and RUNNING, kept by the same statements that
   * move a request between states (src/db/lifecycle.ts), so limits need no lock and no count(*).
   * The sweeper reconciles them with the table.
   */
  queuedCount: integer("queued_count").notNull().default(0),
  runningCount: integer("running_count").notNull().default(0),
});

/**
 * Decrements of a tenant's counters not yet added to its row: a finish (RUNNING or QUEUED → a
 * final status), or the take-back of requests that could not be enqueued, appends one here
 * instead of updating the tenant row, so neither ever waits for the tenant's lock (held by
 * claims and submits, each until its commit). A decrement can never let a limit be exceeded,
 * so it can wait: the next claim or submit of the tenant, which
 * holds the lock anyway, deletes its pending changes and adds them to the row in the same
 * statement. A tenant's counters are its row plus its pending changes. No foreign key, on
 * purpose: one would take a share lock on the tenant row. The primary key is there for logical
 * replication (a publication of all tables refuses DELETEs on a table without one).
 */
export const tenantCounterChanges = pgTable(
  "tenant_counter_changes",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    tenantId: text("tenant_id").notNull(),
    queued: integer("queued").notNull(),
    running: integer("running").notNull(),
  },
  (t) => [index("tenant_counter_changes_tenant_idx").on(t.tenantId)],
);

/** An API client of a tenant. `id` is the public client_id; the secret is kept only as a scrypt hash. */
export const apiClients = pgTable(
  "api_clients",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    secretHash: text("secret_hash").notNull(),
    scopes: text("scopes").array().notNull(),
    createdAt: ts("created_at").notNull(),
    revokedAt: ts("revoked_at"),
  },
  (t) => [index("api_clients_tenant_idx").on(t.tenantId)],
);

/**
 * Webhook signing secrets, encrypted at rest (AES-256-GCM under SECRETS_KEY) because signing
 * needs the secret itself. A rotated secret keeps signing until `expiresAt` (the overlap).
 */
export const signingSecrets = pgTable(
  "signing_secrets",
  {
    id: uuid("id").primaryKey(),
    clientId: text("client_id")
      .notNull()
      .references(() => apiClients.id),
    secretEncrypted: text("secret_encrypted").notNull(),
    createdAt: ts("created_at").notNull(),
    expiresAt: ts("expires_at"),
  },
  (t) => [index("signing_secrets_client_idx").on(t.clientId)],
);

/** Bearer tokens, stored as the SHA-256 digest of the token; the token itself is never kept. */
export const accessTokens = pgTable(
  "access_tokens",
  {
    id: uuid("id").primaryKey(),
    tokenDigest: text("token_digest").notNull().unique(),
    clientId: text("client_id")
      .notNull()
      .references(() => apiClients.id),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    scopes: text("scopes").array().notNull(),
    createdAt: ts("created_at").notNull(),
    expiresAt: ts("expires_at"),
    revokedAt: ts("revoked_at"),
    lastUsedAt: ts("last_used_at"),
  },
  (t) => [index("access_tokens_client_idx").on(t.clientId)],
);

/** A submit's Idempotency-Key: the same key from the same client replays the first answer. */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    clientId: text("client_id").notNull(),
    key: text("key").notNull(),
    requestDigest: text("request_digest").notNull(),
    asyncRequestId: uuid("async_request_id").notNull(),
    responseStatus: integer("response_status").notNull(),
    responseBody: jsonb("response_body").notNull(),
    createdAt: ts("created_at").notNull(),
  },
  // created_at: retention deletes the keys older than the window by range, not by a scan of all of them.
  (t) => [primaryKey({ columns: [t.clientId, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);

export const asyncRequests = pgTable(
  "async_requests",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    createdBy: text("created_by").notNull(),
    action: text("action").notNull(),
    status: text("status").$type<AsyncRequestStatus>().notNull(),
    input: jsonb("input").notNull(),
    result: jsonb("result"),
    errorCode: text("error_code"),
    errorDesc: text("error_desc"),
    errorDetails: jsonb("error_details").$type<unknown[]>().notNull().default(sql`'[]'::jsonb`),
    warnings: jsonb("warnings").$type<unknown[]>().notNull().default(sql`'[]'::jsonb`),
    metadata: jsonb("metadata").$type<Record<string, unknown> | null>(),
    callbackUrl: text("callback_url"),
    progress: integer("progress"),
    /** How many times a worker has started this request (more than 1 after a crash). */
    runs: integer("runs").notNull().default(0),
    createdAt: ts("created_at").notNull(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    updatedAt: ts("updated_at").notNull(),
    // The callback's current attempt series; null when there is no callbackUrl or no series yet.
    callbackStatus: text("callback_status").$type<CallbackStatus>(),
    callbackSeries: integer("callback_series").notNull().default(0),
    callbackAttempts: integer("callback_attempts").notNull().default(0),
    callbackLastStatusCode: integer("callback_last_status_code"),
    callbackLastError: text("callback_last_error"),
    callbackLastAttemptAt: ts("callback_last_attempt_at"),
    callbackNextAttemptAt: ts("callback_next_attempt_at"),
    callbackUpdatedAt: ts("callback_updated_at"),
  },
  (t) => [
    // Every change of status is a non-HOT update that adds an entry to each index whose predicate
    // the new row meets. Partial indexes hold only the rows their queries look for, so a
    // request's usual path (QUEUED, RUNNING, COMPLETED, DELIVERED) writes about a third fewer
    // index entries: a delivered callback leaves the callback index, a finished request the
    // status index. The sweeper looks for series in flight and redelivery for EXHAUSTED ones
    // (src/db/callbacks.ts); the sweeper for unfinished requests (src/db/requests.ts).
    index("async_requests_callback_idx")
      .on(t.callbackStatus, t.callbackUpdatedAt)
      .where(sql`${t.callbackStatus} IN ('PENDING', 'RETRYING', 'EXHAUSTED')`),
    index("async_requests_tenant_created_idx").on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    // In the sweeper's order within a status (oldest touched first, then id), so each of its
    // pages starts where the last one ended instead of sorting the whole backlog again.
    index("async_requests_unfinished_updated_idx").on(t.status, t.updatedAt, t.id).where(sql`${t.status} IN ('QUEUED', 'RUNNING')`),
    index("async_requests_tenant_status_idx").on(t.tenantId, t.status),
    // Retention finds finished requests by age (src/db/retention.ts).
    index("async_requests_finished_idx").on(t.finishedAt).where(sql`${t.finishedAt} IS NOT NULL`),
  ],
);

/** Every delivery attempt, as the receiver answered it (the first 16 KiB of its body). */
export const callbackAttempts = pgTable(
  "callback_attempts",
  {
    id: uuid("id").primaryKey(),
    requestId: uuid("request_id")
      .notNull()
      .references(() => asyncRequests.id),
    series: integer("series").notNull(),
    attempt: integer("attempt").notNull(),
    webhookId: text("webhook_id").notNull(),
    url: text("url").notNull(),
    startedAt: ts("started_at").notNull(),
    durationMs: integer("duration_ms").notNull(),
    statusCode: integer("status_code"),
    errorClass: text("error_class"),
    errorMessage: text("error_message"),
    responseBody: text("response_body"),
    delivered: boolean("delivered").notNull(),
  },
  (t) => [index("callback_attempts_request_idx").on(t.requestId, t.startedAt)],
);

export type CallbackAttemptRow = typeof callbackAttempts.$inferSelect;
export type AsyncRequestRow = typeof asyncRequests.$inferSelect;
/**
 * A request as what comes after its run reads it (the finish, the callback, the API's answer):
 * everything but its input, which can be as large as the body limit and is read only to run it.
 */
export type RequestWithoutInput = Omit<AsyncRequestRow, "input">;
export type NewAsyncRequestRow = typeof asyncRequests.$inferInsert;

export type TenantRow = typeof tenants.$inferSelect;
export type ApiClientRow = typeof apiClients.$inferSelect;
export type AccessTokenRow = typeof accessTokens.$inferSelect;
export type SigningSecretRow = typeof signingSecrets.$inferSelect;
