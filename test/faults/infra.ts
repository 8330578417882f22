import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, createServer as createNetServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort } from "../helpers/redis.js";

const run = promisify(execFile);

/** Polls `condition` until it is true; throws `what` after `timeoutMs`. The wait is on a condition, never a fixed time. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A private redis-server that persists (AOF, fsync every second) in its own temp directory, so a
 * SIGKILL loses at most about a second of writes and a restart on the same port replays the rest.
 */
export async function startPersistentRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ricochet-faults-redis-"));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
    "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    "--hz", "100", "--maxmemory-policy", "noeviction",
  ];
  async function start() {
    const proc = spawn("redis-server", args, { stdio: "ignore" });
    child = proc;
    exited = new Promise<void>((done) => proc.once("exit", () => done()));
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on("error", () => {});
    try {
      await probe.connect().catch(() => {});
      // While the AOF loads Redis answers LOADING; ready means it serves again.
      await until("redis answers PING", async () => (await probe.ping().catch(() => "")) === "PONG", 30_000, 50);
    } finally {
      probe.disconnect();
    }
  }
  async function kill() {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  }
  // If the test process goes away first, so does this server.
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);
  await start();
  return {
    url,
    port,
    get pid() {
      return child?.pid;
    },
    kill,
    start,
    async destroy() {
      process.off("exit", killOnExit);
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type PersistentRedis = Awaited<ReturnType<typeof startPersistentRedis>>;

const PG_BIN = process.env.FAULTS_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** Runs a PostgreSQL binary as the `postgres` OS user (initdb and postgres refuse root). */
async function asPostgres(binary: string, args: string[], timeoutMs = 60_000) {
  const asRoot = process.getuid?.() === 0;
  const [command, fullArgs] = asRoot ? ["runuser", ["-u", "postgres", "--", join(PG_BIN, binary), ...args]] : [join(PG_BIN, binary), args];
  return run(command as string, fullArgs as string[], { timeout: timeoutMs });
}

/**
 * A private PostgreSQL cluster (initdb in a temp dir, a free port, started with pg_ctl) that a
 * test may stop with `-m immediate` (a crash: the next start runs recovery) and start again.
 * fsync is off (the machine does not crash, the server does: the kernel keeps what was written),
 * synchronous_commit stays on so a commit the service was told about survives the kill.
 */
export async function startPrivatePostgres() {
  const dir = mkdtempSync(join(tmpdir(), "ricochet-faults-pg-"));
  const data = join(dir, "data");
  if (process.getuid?.() === 0) await run("chown", ["-R", "postgres:postgres", dir]);
  await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
  const port = await freePort();
  const options = [`-p ${port}`, `-k ${dir}`, "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c max_connections=200"].join(" ");
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let running = false;
  async function start() {
    await asPostgres("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "-o", options, "start"]);
    running = true;
  }
  /** `pg_ctl stop -m immediate`: every backend ends at once, as in a crash. */
  async function stop() {
    running = false;
    await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "60", "stop"]);
  }
  async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: url("postgres") });
    client.on("error", () => {});
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
  // pg_ctl daemonizes the server: if the test process goes away first, stop it synchronously.
  const stopOnExit = () => {
    const [command, args] = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", join(PG_BIN, "pg_ctl")]] : [join(PG_BIN, "pg_ctl"), []];
    spawnSync(command as string, [...(args as string[]), "-D", data, "-m", "immediate", "stop"], { stdio: "ignore", timeout: 10_000 });
  };
  process.once("exit", stopOnExit);
  await start();
  return {
    port,
    url,
    start,
    stop,
    admin,
    get running() {
      return running;
    },
    /** Ends every backend connected to `database` (the service's pooled connections). */
    terminateBackends: (database: string) =>
      admin(async (client) => {
        const { rows } = await client.query<{ ended: boolean }>(
          "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          [database],
        );
        return rows.filter((row) => row.ended).length;
      }),
    log: () => {
      try {
        return readFileSync(join(dir, "server.log"), "utf8");
      } catch {
        return "";
      }
    },
    async destroy() {
      process.off("exit", stopOnExit);
      await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type PrivatePostgres = Awaited<ReturnType<typeof startPrivatePostgres>>;

/** Resident set size of a process in MB (from /proc/<pid>/status), undefined once it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the maximum. */
export function sampleRss(pid: number, everyMs = 250) {
  let max = 0;
  let samples = 0;
  const take = () => {
    const mb = rssMb(pid);
    if (mb !== undefined) {
      samples++;
      max = Math.max(max, mb);
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    get maxMb() {
      return max;
    },
    get samples() {
      return samples;
    },
    stop() {
      clearInterval(timer);
      take();
    },
  };
}

/**
 * A TCP proxy whose client→server direction can be held: while held, what the client sends is
 * kept here and never forwarded, so the client's commands hang unanswered (its link to the
 * server is "stuck", not broken). `drop()` then destroys every connection without forwarding
 * what was held, and new connections flow again. Used to freeze the API between its database
 * write and its enqueue, and kill it there.
 */
export async function startHoldingProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let held = false;
  let heldBytes = 0;
  const server = createNetServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.on("data", (chunk: Buffer) => {
      if (held) heldBytes += chunk.length;
      else upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    hold() {
      held = true;
    },
    get heldBytes() {
      return heldBytes;
    },
    /** Destroys every connection (what was held is never forwarded); new connections flow again. */
    drop() {
      for (const socket of sockets) socket.destroy();
      held = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
