import { sql } from "drizzle-orm";
import { index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { AsyncRequestStatus } from "../shared/status.js";

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: "date" });

/** Tenants own API clients and requests. Limits are null when the configured default applies. */
export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  maxConcurrent: integer("max_concurrent"),
  maxQueued: integer("max_queued"),
  createdAt: ts("created_at").notNull().defaultNow(),
});

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
  },
  (t) => [
    index("async_requests_tenant_created_idx").on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index("async_requests_status_updated_idx").on(t.status, t.updatedAt),
  ],
);

export type AsyncRequestRow = typeof asyncRequests.$inferSelect;
export type NewAsyncRequestRow = typeof asyncRequests.$inferInsert;
