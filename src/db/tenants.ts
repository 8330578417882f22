import { asc, eq } from "drizzle-orm";
import type { Db } from "./client.js";
import { tenants, type TenantRow } from "./schema.js";

export function tenantsRepository(db: Db) {
  return {
    async insert(row: { id: string; name: string; maxConcurrent?: number | null; maxQueued?: number | null; createdAt: Date }): Promise<TenantRow | undefined> {
      const [inserted] = await db.insert(tenants).values(row).onConflictDoNothing().returning();
      return inserted;
    },
    async get(id: string): Promise<TenantRow | undefined> {
      const [row] = await db.select().from(tenants).where(eq(tenants.id, id));
      return row;
    },
    list: (): Promise<TenantRow[]> => db.select().from(tenants).orderBy(asc(tenants.createdAt), asc(tenants.id)),
    async setLimits(id: string, limits: { maxConcurrent?: number | null; maxQueued?: number | null }): Promise<TenantRow | undefined> {
      const [row] = await db.update(tenants).set(limits).where(eq(tenants.id, id)).returning();
      return row;
    },
  };
}

export type TenantsRepository = ReturnType<typeof tenantsRepository>;
