import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "ioredis";

/** True when something answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1_500, tlsCa?: string): Promise<boolean> {
  return (await redisServerPid(url, timeoutMs, tlsCa)) !== undefined;
}

/**
 * The process id of the redis-server answering at `url` (from INFO server), or undefined when
 * none answers within `timeoutMs`; 0 when it answers but will not say (INFO renamed or denied).
 */
export async function redisServerPid(url: string, timeoutMs = 1_500, tlsCa?: string): Promise<number | undefined> {
  const tls = url.startsWith("rediss://") ? { tls: tlsCa ? { ca: tlsCa } : {} } : {};
  const redis = new Redis(url, { ...tls, lazyConnect: true, retryStrategy: () => null, connectTimeout: timeoutMs, maxRetriesPerRequest: 0 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
    const info = await redis.info("server").catch(() => "");
    return Number(/^process_id:(\d+)/m.exec(info)?.[1] ?? 0);
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

export function redisServerOnPath(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * The zero-config mode's Redis: a private redis-server bound to loopback, persisting to
 * DATA_DIR/redis with the settings BullMQ needs (AOF on, noeviction), and hz 100 so that callback
 * retries start within ~10 ms of their time. It dies with us.
 */
export async function startManagedRedis(url: string, dataDir: string): Promise<{ stop(): Promise<void> }> {
  const { hostname: urlHost, port } = new URL(url);
  // The URL writes an IPv6 address in brackets; redis-server's --bind takes it bare.
  const hostname = urlHost.replace(/^\[|\]$/g, "");
  const dir = resolve(dataDir, "redis");
  mkdirSync(dir, { recursive: true });
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", port || "6379", "--bind", hostname || "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction", "--hz", "100"],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  // Whatever way this process ends (a failed start-up, an uncaught error, process.exit), the
  // private Redis ends with it. Only SIGKILL cannot be caught; the next start takes over its port.
  const stopOnExit = () => child.kill("SIGTERM");
  process.once("exit", stopOnExit);
  // Answering is not enough: between the caller's check and the spawn, another redis-server may
  // have taken the port (ours then exits on EADDRINUSE). Only our own child's answer will do.
  let other: number | undefined;
  for (let waited = 0; waited < 10_000; waited += 100) {
    const pid = await redisServerPid(url, 500);
    if (pid !== undefined && pid === child.pid) {
      return {
        async stop() {
          process.off("exit", stopOnExit);
          child.kill("SIGTERM");
          await exited;
        },
      };
    }
    if (pid !== undefined) other = pid;
    if (child.exitCode !== null) break;
    await new Promise((done) => setTimeout(done, 100));
  }
  process.off("exit", stopOnExit);
  child.kill("SIGKILL");
  throw new Error(
    other === undefined
      ? `redis-server did not start on ${url}`
      : `redis-server did not start on ${url}: another Redis (pid ${other || "unknown"}) took the address first`,
  );
}
