import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import { lockDataDir } from "../infra/data-dir-lock.js";
import * as schema from "./schema.js";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/**
 * Raw parameterised SQL for the hot paths (src/db/lifecycle.ts): one statement, one round
 * trip, no query building. Rows come back as the driver parses them (snake_case columns).
 */
export type Sql = {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
};

/** One interface over both drivers: PostgreSQL for servers, PGlite for the zero-config mode. */
export type Database = {
  kind: "postgres" | "pglite";
  db: Db;
  sql: Sql & {
    /** Runs `work` in one transaction (BEGIN … COMMIT, ROLLBACK on error) on one connection. */
    transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T>;
  };
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

const MIGRATION_LOCK = 7_303_512_217; // any constant; only Ricochet's migrator takes it
const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

export type DatabaseOptions = {
  /** postgres:// URL; when absent, PGlite is used. */
  databaseUrl?: string | undefined;
  /** PGlite's directory; `memory://` keeps it in memory (tests). */
  dataDir: string;
  poolSize?: number;
  /** Told about every connection PostgreSQL drops (restart, failover, terminated backend). */
  onConnectionError?: (error: Error) => void;
};

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 10, options.onConnectionError ?? (() => {}));
  return openPglite(options.dataDir);
}

function openPostgres(url: string, max: number, onConnectionError: (error: Error) => void): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5_000,
    // The hot statements (src/db/lifecycle.ts, src/db/retention.ts) are named: each is parsed
    // once per connection and, after its first five runs, runs one cached generic plan instead of
    // being planned every run (0.3–0.9 ms of PostgreSQL CPU each). That plan is made once, maybe
    // while the tables are nearly empty, and kept while they grow (until the next ANALYZE). So
    // each statement names the keys it reaches (`id = ANY (ARRAY(…))`, an index condition) and
    // sequential scans are priced out on these connections: the plan is index probes at any
    // table size. Every other query here also reaches rows by key or an index range; where
    // nothing else can answer, PostgreSQL still scans. Hash joins between a batch's own rows stay
    // allowed. Bitmap scans are priced out too: they never mark the dead index entries they meet
    // (a plain index scan does, so later scans skip them), and tenant_counter_changes, whose rows
    // are appended and deleted hundreds of times a second, made every counter fold re-read every
    // change deleted since the last VACUUM (hundreds of entries per fold within seconds, while
    // the tenant's row is locked); and they give up the index's order, so a range read in order
    // under a LIMIT (retention's oldest finished requests) sorted the whole range first.
    // test/db-requests.test.ts reads the cached plans back. Set before the connection is first
    // handed out (pg-pool waits for the promise this returns; its typing says void).
    onConnect: (client) => client.query("SET enable_seqscan = off; SET enable_bitmapscan = off") as unknown as void,
  });
  // A client that loses its connection emits 'error'. The pool listens only while a client is
  // idle; one checked out (a transaction, a migration) would throw it on the event loop and end
  // the process. Every client gets a listener for its whole life: the query in flight fails on
  // its own, and pg-pool discards the broken client when it is released.
  pool.on("connect", (client) => client.on("error", onConnectionError));
  pool.on("error", onConnectionError);
  const db = drizzlePg({ client: pool, schema }) as unknown as Db;
  // The hot statements are a handful of constant texts: each is prepared once per connection
  // (a named statement), so PostgreSQL parses and plans it once, not once per batch.
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `ricochet_${names.size + 1}`));
    return name;
  };
  const query = async <T,>(client: pg.Pool | pg.PoolClient, text: string, params: unknown[] = []) =>
    (await client.query({ name: params.length ? nameOf(text) : undefined, text, values: params })).rows as T[];
  return {
    kind: "postgres",
    db,
    sql: {
      query: (text, params) => query(pool, text, params),
      async transaction(work) {
        const client = await pool.connect();
        let broken: Error | undefined;
        try {
          await client.query("BEGIN");
          const result = await work({ query: (text, params) => query(client, text, params) });
          await client.query("COMMIT");
          return result;
        } catch (error) {
          await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
          throw error;
        } finally {
          // A client whose ROLLBACK failed has lost its connection: the pool must not reuse it.
          client.release(broken);
        }
      },
    },
    migrate: async () => {
      // API and worker processes start together; the advisory lock lets one migrate at a time.
      const client = await pool.connect();
      try {
        await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
        await migratePg(drizzlePg({ client, schema }), { migrationsFolder });
      } finally {
        await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
        client.release();
      }
    },
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  const inMemory = dataDir.startsWith("memory://");
  if (!inMemory) mkdirSync(dataDir, { recursive: true });
  const lock = inMemory ? undefined : lockDataDir(dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(inMemory ? undefined : `${dataDir}/pglite`);
  } catch (error) {
    lock?.release();
    throw error;
  }
  const pgliteDb = drizzlePglite({ client, schema });
  const db = pgliteDb as unknown as Db;
  return {
    kind: "pglite",
    db,
    sql: {
      query: async (text, params) => (await client.query(text, params)).rows as never,
      transaction: (work) => client.transaction((tx) => work({ query: async (text, params) => (await tx.query(text, params)).rows as never })),
    },
    migrate: () => migratePglite(pgliteDb, { migrationsFolder }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    },
  };
}
