import { asc, eq, getTableColumns, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { tenantCounterChanges, tenants, type TenantRow } from "./schema.js";

/** A tenant's counters: its row plus the changes not yet folded into it (see tenantCounterChanges). */
const pendingSum = (column: "queued" | "running") =>
  sql<number>`(SELECT coalesce(sum(c.${sql.identifier(column)}), 0)::int FROM ${tenantCounterChanges} c WHERE c.tenant_id = ${tenants.id})`;
const counted = {
  ...getTableColumns(tenants),
  queuedCount: sql<number>`${tenants.queuedCount} + ${pendingSum("queued")}`.mapWith(Number),
  runningCount: sql<number>`${tenants.runningCount} + ${pendingSum("running")}`.mapWith(Number),
};

export function tenantsRepository(db: Db) {
  const get = async (id: string): Promise<TenantRow | undefined> => {
    const [row] = await db.select(counted).from(tenants).where(eq(tenants.id, id));
    return row;
  };
  return {
    async insert(row: { id: string; name: string; maxConcurrent?: number | null; maxQueued?: number | null; createdAt: Date }): Promise<TenantRow | undefined> {
      const [inserted] = await db.insert(tenants).values(row).onConflictDoNothing().returning();
      return inserted;
    },
    get,
    list: (): Promise<TenantRow[]> => db.select(counted).from(tenants).orderBy(asc(tenants.createdAt), asc(tenants.id)),
    async setLimits(id: string, limits: { maxConcurrent?: number | null; maxQueued?: number | null }): Promise<TenantRow | undefined> {
      const [row] = await db.update(tenants).set(limits).where(eq(tenants.id, id)).returning({ id: tenants.id });
      return row && get(id);
    },
  };
}

export type TenantsRepository = ReturnType<typeof tenantsRepository>;
