import { Redis, type RedisOptions } from "ioredis";

/**
 * Connections used from request handlers fail fast while Redis is down instead of queueing
 * commands in memory; BullMQ workers need the opposite (retry forever), see BullMQ's docs on
 * "Going to production".
 */
export function createRedis(url: string, kind: "client" | "worker" | "subscriber"): Redis {
  const options: RedisOptions =
    kind === "client"
      ? // Commands issued in the same turn of the event loop (a status event, a callback job, a
        // batch's jobs) go out in one write: fewer syscalls on the hot path.
        { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000, enableAutoPipelining: true }
      : { maxRetriesPerRequest: null, connectTimeout: 5_000 };
  const redis = new Redis(url, { ...options, lazyConnect: true, retryStrategy: (times) => Math.min(times * 200, 2_000) });
  // Errors surface on the commands that need Redis and on /readyz; an unhandled 'error' would crash.
  redis.on("error", () => {});
  return redis;
}

/** Waits until the connection is up, or throws after `timeoutMs`. */
export async function connectRedis(redis: Redis, timeoutMs = 5_000): Promise<void> {
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

export async function pingWithin(redis: Redis, timeoutMs: number): Promise<void> {
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
export async function warnAboutRedisSettings(redis: Redis, warn: (message: string, details: object) => void): Promise<void> {
  try {
    const reply = (await redis.call("CONFIG", "GET", "hz")) as string[];
    const hz = Number(reply[1]);
    if (Number.isFinite(hz) && hz < 50) {
      warn("Redis hz is low: callback retries may start up to 1000/hz ms late; set hz 100 (see README: Operating it)", { hz, lateByUpToMs: Math.round(1000 / hz) });
    }
  } catch {
    // CONFIG is disabled or renamed: nothing to check.
  }
}
