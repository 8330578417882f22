import { and, desc, eq, gt, gte, inArray, lt, or, sql } from "drizzle-orm";
import type { CallbackStatus } from "../shared/callbacks.js";
import { allowedPredecessors, type AsyncRequestStatus } from "../shared/status.js";
import type { Db } from "./client.js";
import { asyncRequests, idempotencyKeys, type AsyncRequestRow, type NewAsyncRequestRow } from "./schema.js";

export type IdempotentInsert = {
  clientId: string;
  key: string;
  requestDigest: string;
  /** Keys older than this are forgotten. */
  notBefore: Date;
  responseStatus: number;
  responseFor(row: AsyncRequestRow): unknown;
};

export type InsertOutcome =
  | { kind: "created"; row: AsyncRequestRow }
  | { kind: "replay"; status: number; body: unknown }
  | { kind: "key-reused" }
  | { kind: "queue-full"; queued: number };

/** Rolls back a submit that found its tenant's queue full. */
class QueueFull extends Error {
  constructor(readonly queued: number) {
    super("queue full");
  }
}

/** Serialises a tenant's submits and starts, so that limits hold under concurrency. */
const lockTenant = (db: Db, tenantId: string) =>
  db.execute(sql`select pg_advisory_xact_lock(hashtext(${"ricochet-tenant:" + tenantId}))`);

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
  const inTransaction = <T>(work: (repo: RequestsRepository, tx: Db) => Promise<T>) =>
    db.transaction((tx) => work(requestsRepository(tx as unknown as Db), tx as unknown as Db));

  return {
    /**
     * Inserts a request unless the tenant's queue is full; with an idempotency key, replays the
     * first answer for the same body, or refuses the key with a different one. One transaction.
     */
    async insertWithinLimit(row: NewAsyncRequestRow & { tenantId: string }, maxQueued: number, idempotency?: IdempotentInsert): Promise<InsertOutcome> {
      if (!idempotency) {
        // Insert first, then lock and count (this row included): the lock is held only for the
        // count and the commit, and a later submit's count sees every earlier commit.
        try {
          return await inTransaction(async (repo, tx) => {
            const inserted = await repo.insert(row);
            await lockTenant(tx, row.tenantId);
            const queued = await repo.count(row.tenantId, "QUEUED");
            if (queued > maxQueued) throw new QueueFull(queued - 1);
            return { kind: "created" as const, row: inserted };
          });
        } catch (error) {
          if (error instanceof QueueFull) return { kind: "queue-full", queued: error.queued };
          throw error;
        }
      }
      return inTransaction(async (repo, tx) => {
        await lockTenant(tx, row.tenantId);
        if (idempotency) {
          const { clientId, key } = idempotency;
          const match = and(eq(idempotencyKeys.clientId, clientId), eq(idempotencyKeys.key, key));
          await tx.delete(idempotencyKeys).where(and(match, lt(idempotencyKeys.createdAt, idempotency.notBefore)));
          const [previous] = await tx.select().from(idempotencyKeys).where(match);
          if (previous) {
            return previous.requestDigest === idempotency.requestDigest
              ? { kind: "replay", status: previous.responseStatus, body: previous.responseBody }
              : { kind: "key-reused" };
          }
        }
        const queued = await repo.count(row.tenantId, "QUEUED");
        if (queued >= maxQueued) return { kind: "queue-full", queued };
        const inserted = await repo.insert(row);
        if (idempotency) {
          await tx.insert(idempotencyKeys).values({
            clientId: idempotency.clientId,
            key: idempotency.key,
            requestDigest: idempotency.requestDigest,
            asyncRequestId: inserted.id,
            responseStatus: idempotency.responseStatus,
            responseBody: idempotency.responseFor(inserted),
            createdAt: inserted.createdAt,
          });
        }
        return { kind: "created", row: inserted };
      });
    },

    /**
     * QUEUED → RUNNING only while the tenant has fewer than `maxConcurrent` RUNNING requests.
     * A RUNNING request run again after a crash already holds its slot.
     */
    startWithinLimit(id: string, tenantId: string, maxConcurrent: number, at: Date): Promise<AsyncRequestRow | "at-limit" | undefined> {
      return inTransaction(async (repo, tx) => {
        await lockTenant(tx, tenantId);
        const current = await repo.getById(id);
        if (current?.status === "QUEUED" && (await repo.count(tenantId, "RUNNING")) >= maxConcurrent) return "at-limit";
        return repo.transition(id, "RUNNING", at);
      });
    },

    async count(tenantId: string, status: AsyncRequestStatus): Promise<number> {
      const [row] = await db
        .select({ n: sql<number>`count(*)::int` })
        .from(asyncRequests)
        .where(and(eq(asyncRequests.tenantId, tenantId), eq(asyncRequests.status, status)));
      return row?.n ?? 0;
    },

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

    /**
     * Moves a request to `to` only if its current status allows it; the database is the
     * arbiter between a cancelling API and a running worker. Undefined when not allowed.
     */
    async transition(
      id: string,
      to: AsyncRequestStatus,
      at: Date,
      fields: Partial<
        Pick<AsyncRequestRow, "result" | "errorCode" | "errorDesc" | "errorDetails" | "warnings" | "progress">
      > = {},
    ): Promise<AsyncRequestRow | undefined> {
      const timestamps =
        to === "RUNNING"
          ? { startedAt: at, runs: sql`${asyncRequests.runs} + 1` }
          : {
              finishedAt: at,
              // Finishing opens the first callback series, in the same statement: exactly once.
              callbackStatus: sql`case when ${asyncRequests.callbackUrl} is null then null else 'PENDING' end`,
              callbackSeries: sql`case when ${asyncRequests.callbackUrl} is null then 0 else 1 end`,
              callbackUpdatedAt: at,
            };
      const [row] = await db
        .update(asyncRequests)
        .set({ ...fields, ...timestamps, status: to, updatedAt: at })
        .where(and(eq(asyncRequests.id, id), inArray(asyncRequests.status, [...allowedPredecessors(to)])))
        .returning();
      return row;
    },

    async setProgress(id: string, progress: number, at: Date): Promise<void> {
      await db
        .update(asyncRequests)
        .set({ progress, updatedAt: at })
        .where(and(eq(asyncRequests.id, id), eq(asyncRequests.status, "RUNNING")));
    },

    /** Unfinished requests not touched since `before`, oldest first, in pages: the sweeper's work. */
    async findUnfinishedSince(
      before: Date,
      after: { updatedAt: Date; id: string } | undefined,
      limit: number,
    ): Promise<Pick<AsyncRequestRow, "id" | "status" | "updatedAt">[]> {
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
        .select({ id: asyncRequests.id, status: asyncRequests.status, updatedAt: asyncRequests.updatedAt })
        .from(asyncRequests)
        .where(and(...conditions))
        .orderBy(asyncRequests.updatedAt, asyncRequests.id)
        .limit(limit);
    },
  };
}

export type RequestsRepository = ReturnType<typeof requestsRepository>;
