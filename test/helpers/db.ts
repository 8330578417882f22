import { randomBytes } from "node:crypto";
import pg from "pg";
import { openDatabase, type Database } from "../../src/db/client.js";

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export type DbKind = "postgres" | "pglite";
export const DB_KINDS: DbKind[] = ["postgres", "pglite"];

export type TestDatabase = Database & { url: string | undefined; drop(): Promise<void> };

/** A private, migrated database: a fresh PostgreSQL database, or an in-memory PGlite. */
export async function createTestDatabase(kind: DbKind = "postgres"): Promise<TestDatabase> {
  if (kind === "pglite") {
    const database = await openDatabase({ dataDir: "memory://" });
    await database.migrate();
    return { ...database, url: undefined, drop: () => database.close().catch(() => {}) };
  }
  const name = `ricochet_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const database = await openDatabase({ databaseUrl: url.toString(), dataDir: "unused", poolSize: 5 });
  await database.migrate();
  return {
    ...database,
    url: url.toString(),
    async drop() {
      await database.close().catch(() => {}); // a test may have closed it already
      const cleanup = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}
