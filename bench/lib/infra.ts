/** Databases, Redis prefixes and ports the bench creates for itself, and removes again. */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import pg from "pg";
import { config } from "./config.js";
import { log, onCleanup, spawnChild, type Child } from "./procs.js";

export const randomId = () => randomBytes(4).toString("hex");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: config.adminDatabaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh, empty PostgreSQL database; dropped by the returned function (and at cleanup). */
export async function createDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomId()}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(config.adminDatabaseUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    unregister();
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  const unregister = onCleanup(`drop database ${name}`, drop);
  return { url: url.toString(), drop };
}

/**
 * On-disk size of a database's own tables: pg_total_relation_size (heap, indexes, TOAST, free
 * space and visibility maps) of every table outside the system schemas, in bytes, per table.
 */
export async function databaseSize(url: string): Promise<{ bytes: number; byTable: Record<string, number> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; bytes: string }>(
      `SELECT n.nspname || '.' || c.relname AS name, pg_total_relation_size(c.oid) AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY 2 DESC`,
    );
    const byTable = Object.fromEntries(rows.map((row) => [row.name, Number(row.bytes)]));
    return { bytes: Object.values(byTable).reduce((sum, bytes) => sum + bytes, 0), byTable };
  } finally {
    await client.end();
  }
}

/** Deletes every key under `prefix` with SCAN + DEL (never KEYS, never FLUSHALL: Redis is shared). */
export async function deleteKeys(prefix: string, url = config.redisUrl): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A BullMQ prefix of our own, as a hash tag like production's; its keys are deleted at cleanup. */
export function queuePrefix(redisUrl = config.redisUrl): { prefix: string; release(): Promise<void> } {
  const prefix = `{bench-${randomId()}}`;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    unregister();
    await deleteKeys(prefix, redisUrl);
  };
  const unregister = onCleanup(`delete keys ${prefix}:*`, release);
  return { prefix, release };
}

/** A private redis-server without persistence: what it holds is only ours, so INFO memory is ours. */
export async function startPrivateRedis(): Promise<{ url: string; child: Child; redis: Redis; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawnChild("redis-private", "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]);
  const url = `redis://127.0.0.1:${port}`;
  // Commands wait while ioredis retries the connection, so the first PING answers once it is up.
  const redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  redis.on("error", () => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the private redis-server on port ${port} did not answer; its log: ${child.logFile}`)), 10_000);
  });
  await Promise.race([redis.ping(), timeout]).finally(() => clearTimeout(timer));
  log(`private redis-server on port ${port}`);
  return {
    url,
    child,
    redis,
    async stop() {
      redis.disconnect();
      await child.stop();
    },
  };
}

/** `used_memory` from INFO memory, in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** MEMORY USAGE of every key, summed per `<prefix>:<queue>:<kind>` (ids replaced by `*`). */
export async function memoryByKeyGroup(redis: Redis): Promise<Record<string, { keys: number; bytes: number }>> {
  const groups: Record<string, { keys: number; bytes: number }> = {};
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory("USAGE", key);
    const sizes = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const parts = key.split(":");
      // {prefix}:queue:<job id> is a job hash; {prefix}:queue:wait etc. are the queue's own keys.
      const kind = parts.length > 2 && /^[0-9a-f-]{8,}|^\d+$|\./.test(parts[2]!) ? `job ${parts.slice(3).join(":") || "hash"}` : parts.slice(2).join(":");
      const group = `${parts[1] ?? "?"}: ${kind}`;
      const entry = (groups[group] ??= { keys: 0, bytes: 0 });
      entry.keys++;
      entry.bytes += Number(sizes[i]?.[1] ?? 0);
    });
  } while (cursor !== "0");
  return groups;
}
