import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { redisServerPid } from "../../src/infra/managed-redis.js";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A queue prefix no other test uses; a hash tag, as production uses. */
export function uniquePrefix(): string {
  return `{rt-${randomBytes(5).toString("hex")}}`;
}

/** Deletes every key under `prefix` (BullMQ queues, locks). */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A free port below the kernel's ephemeral range: freePort()'s ports, and every client socket's,
 * come from that range, so a port picked here and bound seconds later (by a process the test
 * starts) is not handed to another test's server or connection meanwhile.
 */
export async function freePortBelowEphemeral(): Promise<number> {
  let low = 32_768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152, above this default
  }
  const floor = Math.max(1_024, low - 12_000);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port between ${floor} and ${low}`);
}

/**
 * A private redis-server (no persistence) that a test may kill and restart on the same port.
 * `hz` is Redis's timer frequency: a blocking command's timeout (how BullMQ waits for a delayed
 * job) fires up to 1000/hz ms late, so tests of exact delays run with a higher one.
 */
export async function startPrivateRedis(options: { hz?: number } = {}): Promise<{ url: string; port: number; stop(): Promise<void>; restart(): Promise<void> }> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess;
  let exited: Promise<void>;
  const launch = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--hz", String(options.hz ?? 10)], { stdio: "ignore" });
    exited = new Promise<void>((done) => child.once("exit", () => done()));
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on("error", () => {});
    await probe.connect().catch(() => {});
    await probe.ping();
    probe.disconnect();
    // Another test's server may have taken the port between freePort and the spawn: fail here, by name.
    const pid = await redisServerPid(url);
    if (pid !== child.pid) throw new Error(`port ${port} is held by another redis-server (pid ${pid}), not ours (pid ${child.pid})`);
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  await launch();
  return {
    url,
    port,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}
