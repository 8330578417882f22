import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

/** Any Redis connection the service uses: one node (also behind Sentinel) or a Cluster. */
export type RedisConnection = Redis | Cluster;

export type RedisNode = { host: string; port: number };

/** Where Redis is, validated once by the config (see README: Redis deployments). */
export type RedisTarget =
  | { mode: "single"; url: string; tlsCa?: string }
  | { mode: "cluster"; nodes: RedisNode[]; username?: string; password?: string; tls: boolean; tlsCa?: string }
  | {
      mode: "sentinel";
      sentinels: RedisNode[];
      name: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
      username?: string;
      password?: string;
      tls: boolean;
      tlsCa?: string;
    };

export type RedisKind = "client" | "worker" | "subscriber";

/**
 * Connections used from request handlers fail fast while Redis is down instead of queueing
 * commands in memory; BullMQ workers need the opposite (retry forever), see BullMQ's docs on
 * "Going to production".
 */
function optionsFor(kind: RedisKind): RedisOptions {
  // Not auto-pipelined: ioredis would build a Pipeline for every turn of the event loop that sends
  // a command, copying onto it each of the scripts BullMQ defines on the connection (5–8 % of a
  // process's busy time at 100 requests/s). What is sent together is batched where it is made
  // instead: status events per turn (pubsub.ts), jobs per batch or per turn (queues.ts).
  return kind === "client"
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 }
    : { maxRetriesPerRequest: null, connectTimeout: 5_000 };
}

const retryStrategy = (times: number) => Math.min(times * 200, 2_000);

function tlsOptions(enabled: boolean, ca: string | undefined): RedisOptions["tls"] {
  if (!enabled) return undefined;
  return ca ? { ca } : {};
}

/** A connection of the given kind to the configured target; nothing is sent until connectRedis. */
export function createRedis(target: RedisTarget, kind: RedisKind): RedisConnection {
  const options = optionsFor(kind);
  let connection: RedisConnection;
  if (target.mode === "single") {
    // The URL's own settings (host, credentials, db, rediss:// for TLS) win over these defaults.
    const tls = target.url.startsWith("rediss://") ? tlsOptions(true, target.tlsCa) : undefined;
    connection = new Redis(target.url, { ...options, ...(tls ? { tls } : {}), lazyConnect: true, retryStrategy });
  } else if (target.mode === "sentinel") {
    const tls = tlsOptions(target.tls, target.tlsCa);
    connection = new Redis({
      ...options,
      sentinels: target.sentinels,
      name: target.name,
      sentinelUsername: target.sentinelUsername,
      sentinelPassword: target.sentinelPassword,
      username: target.username,
      password: target.password,
      ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
      lazyConnect: true,
      retryStrategy,
      sentinelRetryStrategy: retryStrategy,
      // After a failover the old primary (if it comes back) is a replica: a write that reaches it
      // answers READONLY. Reconnecting asks the sentinels for the new primary and resends.
      reconnectOnError: (error) => (error.message.startsWith("READONLY") ? 2 : false),
      // Every reconnect asks the sentinels for the primary. ioredis's `failoverDetector` is left off
      // (its default): its +switch-master handler ends the connection attempt in progress, and an
      // attempt ended while it asks the sentinels leaves the client closed for good (status "end",
      // every command failing), which the Sentinel fault scenario hit after some failovers.
    });
  } else {
    const tls = tlsOptions(target.tls, target.tlsCa);
    const { enableOfflineQueue, enableAutoPipelining, ...nodeOptions } = options;
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: enableOfflineQueue ?? true,
      enableAutoPipelining: enableAutoPipelining ?? false,
      clusterRetryStrategy: retryStrategy,
      // Every key of a prefix lives in one slot (its hash tag): a command goes to that slot's
      // primary; a MOVED answer (resharding, failover) refreshes the slot map and is followed.
      scaleReads: "master",
      redisOptions: { ...nodeOptions, username: target.username, password: target.password, ...(tls ? { tls } : {}) },
    };
    connection = new Cluster(target.nodes, clusterOptions);
  }
  // Errors surface on the commands that need Redis and on /readyz; an unhandled 'error' would crash.
  connection.on("error", () => {});
  return connection;
}

/**
 * Refuses configurations that would fail later in confusing ways: a Cluster node given as a
 * single-node REDIS_URL (every command would answer MOVED), or a Cluster target that is not one.
 */
export async function checkRedisTarget(connection: RedisConnection, target: RedisTarget): Promise<void> {
  if (target.mode !== "single") return;
  let info: string;
  try {
    info = await (connection as Redis).info("cluster");
  } catch {
    return; // INFO disabled (some managed Redis): nothing to check
  }
  if (/^cluster_enabled:1/m.test(info)) {
    throw new RedisConfigError(
      "REDIS_URL points at a Redis Cluster node; a single-node connection would get MOVED for most keys. Set REDIS_CLUSTER_NODES=host:port,host:port (any of the cluster's nodes) instead of REDIS_URL (see README: Redis deployments).",
    );
  }
}

export class RedisConfigError extends Error {
  override name = "RedisConfigError";
}

/** A short description for logs: never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.mode === "single") {
    const url = new URL(target.url);
    return `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
  }
  const nodes = (target.mode === "cluster" ? target.nodes : target.sentinels).map((n) => `${n.host}:${n.port}`).join(",");
  return target.mode === "cluster" ? `cluster ${nodes}${target.tls ? " (TLS)" : ""}` : `sentinel ${target.name} via ${nodes}${target.tls ? " (TLS)" : ""}`;
}

/** Waits until the connection is up, or throws after `timeoutMs`. */
export async function connectRedis(redis: RedisConnection, timeoutMs = 5_000): Promise<void> {
  if (redis.status === "ready") return;
  if (redis.status === "wait") void redis.connect().catch(() => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
    };
    redis.on("ready", onReady);
  });
}

export async function pingWithin(redis: RedisConnection, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Warns about Redis settings that weaken a promise: `hz` below 50 lets a delayed job (a callback
 * retry) start up to 1000/hz ms late, because that is how often Redis ends blocking waits. A
 * Redis that refuses CONFIG (many managed ones) is not an error.
 */
export async function warnAboutRedisSettings(redis: RedisConnection, warn: (message: string, details: object) => void): Promise<void> {
  try {
    const reply = (await redis.call("CONFIG", "GET", "hz")) as string[];
    const hz = Number(reply[1]);
    if (Number.isFinite(hz) && hz < 50) {
      warn("Redis hz is low: callback retries may start up to 1000/hz ms late; set hz 100 (see README: Operating Ricochet)", { hz, lateByUpToMs: Math.round(1000 / hz) });
    }
  } catch {
    // CONFIG is disabled or renamed: nothing to check.
  }
}
