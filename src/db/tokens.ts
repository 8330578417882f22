import { and, eq, isNull, lt, or } from "drizzle-orm";
import type { Db } from "./client.js";
import { accessTokens, apiClients, type AccessTokenRow } from "./schema.js";

export type TokenLookup = AccessTokenRow & { clientRevokedAt: Date | null };

export function tokensRepository(db: Db) {
  return {
    async insert(row: typeof accessTokens.$inferInsert): Promise<void> {
      await db.insert(accessTokens).values(row);
    },
    async findByDigest(digest: string): Promise<TokenLookup | undefined> {
      const [row] = await db
        .select({ token: accessTokens, clientRevokedAt: apiClients.revokedAt })
        .from(accessTokens)
        .innerJoin(apiClients, eq(apiClients.id, accessTokens.clientId))
        .where(eq(accessTokens.tokenDigest, digest));
      return row ? { ...row.token, clientRevokedAt: row.clientRevokedAt } : undefined;
    },
    /** Revokes by digest; with `clientId`, only if that client owns the token (RFC 7009 §2.1). */
    async revokeByDigest(digest: string, at: Date, clientId?: string): Promise<string[]> {
      const rows = await db
        .update(accessTokens)
        .set({ revokedAt: at })
        .where(and(eq(accessTokens.tokenDigest, digest), isNull(accessTokens.revokedAt), clientId ? eq(accessTokens.clientId, clientId) : undefined))
        .returning({ digest: accessTokens.tokenDigest });
      return rows.map((row) => row.digest);
    },
    async revokeAllOfClient(clientId: string, at: Date): Promise<string[]> {
      const rows = await db
        .update(accessTokens)
        .set({ revokedAt: at })
        .where(and(eq(accessTokens.clientId, clientId), isNull(accessTokens.revokedAt)))
        .returning({ digest: accessTokens.tokenDigest });
      return rows.map((row) => row.digest);
    },
    /** Records use at most once a minute per token, so a busy token is not a write per call. */
    async touch(id: string, at: Date): Promise<void> {
      await db
        .update(accessTokens)
        .set({ lastUsedAt: at })
        .where(and(eq(accessTokens.id, id), or(isNull(accessTokens.lastUsedAt), lt(accessTokens.lastUsedAt, new Date(at.getTime() - 60_000)))));
    },
  };
}

export type TokensRepository = ReturnType<typeof tokensRepository>;
