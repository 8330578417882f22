import { and, eq, gte, inArray, lt, sql } from "drizzle-orm";
import type { CallbackStatus } from "../shared/callbacks.js";
import type { AsyncRequestStatus } from "../shared/status.js";
import type { Db } from "./client.js";
import { asyncRequests, type AsyncRequestRow, type NewAsyncRequestRow } from "./schema.js";

export type UnfinishedStatus = Extract<AsyncRequestStatus, "QUEUED" | "RUNNING">;

export type ListFilters = {
  tenantId: string;
  status?: AsyncRequestStatus[] | undefined;
  action?: string[] | undefined;
  callbackStatus?: CallbackStatus[] | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Keyset position: rows strictly older than this one (newest first). */
  after?: { createdAt: Date; id: string } | undefined;
  limit: number;
};

/** Everything that reads and writes async requests. Tenant scoping happens here, not in callers. */
export function requestsRepository(db: Db) {
  /** The list's statement, built but not run (test/db-requests.test.ts reads its plan). */
  function listQuery(filters: ListFilters) {
    const conditions = [eq(asyncRequests.tenantId, filters.tenantId)];
    if (filters.status?.length) conditions.push(inArray(asyncRequests.status, filters.status));
    if (filters.action?.length) conditions.push(inArray(asyncRequests.action, filters.action));
    if (filters.callbackStatus?.length) conditions.push(inArray(asyncRequests.callbackStatus, filters.callbackStatus));
    if (filters.from) conditions.push(gte(asyncRequests.createdAt, filters.from));
    if (filters.to) conditions.push(lt(asyncRequests.createdAt, filters.to));
    // The keyset as one row comparison, and the order spelled as the index stores it
    // (async_requests_tenant_created_idx: tenant_id, created_at DESC NULLS LAST, id DESC NULLS
    // LAST): a page is then read from the index where the cursor points, whatever the tenant's
    // size. With the default DESC (NULLS FIRST) the index could not give the order, and every
    // page read and sorted all of the tenant's rows; with `<` OR (`=` AND `<`) a deep page read
    // every newer row first.
    if (filters.after) conditions.push(sql`(${asyncRequests.createdAt}, ${asyncRequests.id}) < (${filters.after.createdAt.toISOString()}::timestamptz, ${filters.after.id}::uuid)`);
    return db
      .select()
      .from(asyncRequests)
      .where(and(...conditions))
      .orderBy(sql`${asyncRequests.createdAt} DESC NULLS LAST`, sql`${asyncRequests.id} DESC NULLS LAST`)
      .limit(filters.limit);
  }

  /** The sweeper's page, built but not run (test/db-requests.test.ts reads its plan). */
  function unfinishedQuery(status: UnfinishedStatus, before: Date, after: { updatedAt: Date; id: string } | undefined, limit: number) {
    // One status at a time, read from async_requests_unfinished_updated_idx (status, updated_at,
    // id) in its order from the keyset on (one row comparison, an index condition): a page costs
    // the same whatever the backlog.
    const conditions = [eq(asyncRequests.status, status), lt(asyncRequests.updatedAt, before)];
    if (after) conditions.push(sql`(${asyncRequests.updatedAt}, ${asyncRequests.id}) > (${after.updatedAt.toISOString()}::timestamptz, ${after.id}::uuid)`);
    return db
      .select({ id: asyncRequests.id, status: asyncRequests.status, action: asyncRequests.action, updatedAt: asyncRequests.updatedAt })
      .from(asyncRequests)
      .where(and(...conditions))
      .orderBy(asyncRequests.updatedAt, asyncRequests.id)
      .limit(limit);
  }

  return {
    /** A row as it is, outside the life-cycle and its counters: fixtures and tests only. */
    async insert(row: NewAsyncRequestRow): Promise<AsyncRequestRow> {
      const [inserted] = await db.insert(asyncRequests).values(row).returning();
      return inserted!;
    },

    async get(tenantId: string, id: string): Promise<AsyncRequestRow | undefined> {
      const [row] = await db
        .select()
        .from(asyncRequests)
        .where(and(eq(asyncRequests.tenantId, tenantId), eq(asyncRequests.id, id)));
      return row;
    },

    async getById(id: string): Promise<AsyncRequestRow | undefined> {
      const [row] = await db.select().from(asyncRequests).where(eq(asyncRequests.id, id));
      return row;
    },

    list(filters: ListFilters): Promise<AsyncRequestRow[]> {
      return listQuery(filters).execute();
    },

    /** Requests in `status` (QUEUED or RUNNING) not touched since `before`, oldest first, in pages: the sweeper's work. */
    findUnfinishedSince(
      status: UnfinishedStatus,
      before: Date,
      after: { updatedAt: Date; id: string } | undefined,
      limit: number,
    ): Promise<Pick<AsyncRequestRow, "id" | "status" | "action" | "updatedAt">[]> {
      return unfinishedQuery(status, before, after, limit).execute();
    },

    listQuery,
    unfinishedQuery,
  };
}

export type RequestsRepository = ReturnType<typeof requestsRepository>;
