import { and, desc, eq, gt, gte, inArray, lt, or } from "drizzle-orm";
import type { CallbackStatus } from "../shared/callbacks.js";
import type { AsyncRequestStatus } from "../shared/status.js";
import type { Db } from "./client.js";
import { asyncRequests, type AsyncRequestRow, type NewAsyncRequestRow } from "./schema.js";

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

    async list(filters: ListFilters): Promise<AsyncRequestRow[]> {
      const conditions = [eq(asyncRequests.tenantId, filters.tenantId)];
      if (filters.status?.length) conditions.push(inArray(asyncRequests.status, filters.status));
      if (filters.action?.length) conditions.push(inArray(asyncRequests.action, filters.action));
      if (filters.callbackStatus?.length) conditions.push(inArray(asyncRequests.callbackStatus, filters.callbackStatus));
      if (filters.from) conditions.push(gte(asyncRequests.createdAt, filters.from));
      if (filters.to) conditions.push(lt(asyncRequests.createdAt, filters.to));
      if (filters.after) {
        const { createdAt, id } = filters.after;
        conditions.push(
          or(
            lt(asyncRequests.createdAt, createdAt),
            and(eq(asyncRequests.createdAt, createdAt), lt(asyncRequests.id, id)),
          )!,
        );
      }
      return db
        .select()
        .from(asyncRequests)
        .where(and(...conditions))
        .orderBy(desc(asyncRequests.createdAt), desc(asyncRequests.id))
        .limit(filters.limit);
    },

    /** Unfinished requests not touched since `before`, oldest first, in pages: the sweeper's work. */
    async findUnfinishedSince(
      before: Date,
      after: { updatedAt: Date; id: string } | undefined,
      limit: number,
    ): Promise<Pick<AsyncRequestRow, "id" | "status" | "action" | "updatedAt">[]> {
      const conditions = [inArray(asyncRequests.status, ["QUEUED", "RUNNING"]), lt(asyncRequests.updatedAt, before)];
      if (after) {
        conditions.push(
          or(
            gt(asyncRequests.updatedAt, after.updatedAt),
            and(eq(asyncRequests.updatedAt, after.updatedAt), gt(asyncRequests.id, after.id)),
          )!,
        );
      }
      return db
        .select({ id: asyncRequests.id, status: asyncRequests.status, action: asyncRequests.action, updatedAt: asyncRequests.updatedAt })
        .from(asyncRequests)
        .where(and(...conditions))
        .orderBy(asyncRequests.updatedAt, asyncRequests.id)
        .limit(limit);
    },
  };
}

export type RequestsRepository = ReturnType<typeof requestsRepository>;
