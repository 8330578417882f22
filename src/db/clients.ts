import { and, asc, eq, gt, isNull, or } from "drizzle-orm";
import type { Db } from "./client.js";
import { apiClients, signingSecrets, type ApiClientRow, type SigningSecretRow } from "./schema.js";

export function clientsRepository(db: Db) {
  return {
    async insert(
      client: typeof apiClients.$inferInsert,
      secret: typeof signingSecrets.$inferInsert,
    ): Promise<ApiClientRow> {
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(apiClients).values(client).returning();
        await tx.insert(signingSecrets).values(secret);
        return row!;
      });
    },
    async get(id: string): Promise<ApiClientRow | undefined> {
      const [row] = await db.select().from(apiClients).where(eq(apiClients.id, id));
      return row;
    },
    list: (tenantId?: string): Promise<ApiClientRow[]> =>
      db
        .select()
        .from(apiClients)
        .where(tenantId ? eq(apiClients.tenantId, tenantId) : undefined)
        .orderBy(asc(apiClients.createdAt), asc(apiClients.id)),
    async revoke(id: string, at: Date): Promise<ApiClientRow | undefined> {
      const [row] = await db.update(apiClients).set({ revokedAt: at }).where(and(eq(apiClients.id, id), isNull(apiClients.revokedAt))).returning();
      return row;
    },
    async setSecretHash(id: string, secretHash: string): Promise<ApiClientRow | undefined> {
      const [row] = await db.update(apiClients).set({ secretHash }).where(eq(apiClients.id, id)).returning();
      return row;
    },
    /** Secrets that still sign at `at`: the current one and any in their rotation overlap. */
    activeSigningSecrets: (clientId: string, at: Date): Promise<SigningSecretRow[]> =>
      db
        .select()
        .from(signingSecrets)
        .where(and(eq(signingSecrets.clientId, clientId), or(isNull(signingSecrets.expiresAt), gt(signingSecrets.expiresAt, at))))
        .orderBy(asc(signingSecrets.createdAt)),
    /** Adds a new signing secret; every older one signs at most until `overlapUntil`. */
    async rotateSigningSecret(secret: typeof signingSecrets.$inferInsert, overlapUntil: Date): Promise<void> {
      await db.transaction(async (tx) => {
        await tx
          .update(signingSecrets)
          .set({ expiresAt: overlapUntil })
          .where(and(eq(signingSecrets.clientId, secret.clientId), or(isNull(signingSecrets.expiresAt), gt(signingSecrets.expiresAt, overlapUntil))));
        await tx.insert(signingSecrets).values(secret);
      });
    },
  };
}

export type ClientsRepository = ReturnType<typeof clientsRepository>;
