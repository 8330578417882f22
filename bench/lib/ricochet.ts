/**
 * Ricochet started the way an operator starts it: `node --import tsx src/main.ts api|worker|start`
 * as child processes, configured only through the environment, against a fresh PostgreSQL
 * database (or PGlite in a temporary DATA_DIR) and a BullMQ prefix of its own. Each stack is
 * torn down completely (processes, database, Redis keys, files) by `stop()` or at cleanup.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { config } from "./config.js";
import { call, waitReady } from "./http.js";
import { createDatabase, freePort, queuePrefix } from "./infra.js";
import type { PidGroups } from "./proc-stats.js";
import { log, onCleanup, spawnTs, type Child } from "./procs.js";

export type Topology = "api" | "split" | "start";

export type RicochetOptions = {
  /** api: the API alone; split: an `api` and a `worker` process; start: both roles in one. */
  topology: Topology;
  database?: "postgres" | "pglite";
  redisUrl?: string;
  /** Extra environment, e.g. CALLBACK_RETRY_DELAYS. */
  env?: Record<string, string>;
  /** split only: how many `api` and `worker` processes (1 each unless said), each API on its own port. */
  apis?: number;
  workers?: number;
};

export type Ricochet = Awaited<ReturnType<typeof startRicochet>>;

export async function startRicochet(name: string, options: RicochetOptions) {
  const started = performance.now();
  const redisUrl = options.redisUrl ?? config.redisUrl;
  const queue = queuePrefix(redisUrl);
  const database = options.database === "pglite" ? undefined : await createDatabase("ricochet_bench");
  const dataDir = database ? undefined : mkdtempSync(join(tmpdir(), "ricochet-bench-pglite-"));
  const removeDataDir = dataDir ? onCleanup(`remove ${dataDir}`, async () => rmSync(dataDir, { recursive: true, force: true })) : () => {};
  const adminToken = randomBytes(24).toString("hex");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const apiCount = options.topology === "split" ? Math.max(1, options.apis ?? 1) : 1;
  const workerCount = options.topology === "split" ? Math.max(1, options.workers ?? 1) : 0;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(database ? { DATABASE_URL: database.url } : { DATABASE_URL: "", DATA_DIR: dataDir }),
    REDIS_URL: redisUrl,
    MANAGED_REDIS: "off",
    QUEUE_PREFIX: queue.prefix,
    SECRETS_KEY: randomBytes(32).toString("base64"),
    ADMIN_TOKEN: adminToken,
    HOST: "127.0.0.1",
    PORT: String(port),
    OUTBOUND_ALLOW: "127.0.0.1/32",
    DEFAULT_MAX_CONCURRENT: "100000",
    DEFAULT_MAX_QUEUED: "10000000",
    LOG_LEVEL: config.logLevel,
    WORKER_CONCURRENCY: String(config.workerConcurrency),
    CALLBACK_CONCURRENCY: String(config.callbackConcurrency),
    // The bench stops processes with work still queued; it need not wait for it.
    SHUTDOWN_TIMEOUT: "2s",
    ...options.env,
  };
  const main = join(config.root, "src/main.ts");
  const children: Child[] = [];
  const apis: Child[] = [];
  const workers: Child[] = [];
  const bases = [base];

  const stop = async () => {
    unregister();
    await Promise.all(children.map((child) => child.stop()));
    await database?.drop();
    await queue.release();
    removeDataDir();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const unregister = onCleanup(`stop ricochet ${name}`, stop);

  // One API first: it applies the migrations, so the other processes do not wait on their lock.
  // Several of a kind are numbered (ricochet-scale-api2); each API listens on a port of its own.
  const numbered = (kind: string, i: number, count: number) => `ricochet-${name}-${kind}${count > 1 ? i + 1 : ""}`;
  const api = spawnTs(numbered(options.topology === "start" ? "start" : "api", 0, apiCount), main, [options.topology === "start" ? "start" : "api"], { cwd: config.root, env });
  children.push(api);
  apis.push(api);
  await waitReady(`${base}/readyz`, api);
  const rest: Promise<void>[] = [];
  for (let i = 1; i < apiCount; i++) {
    const apiPort = await freePort();
    const child = spawnTs(numbered("api", i, apiCount), main, ["api"], { cwd: config.root, env: { ...env, PORT: String(apiPort) } });
    children.push(child);
    apis.push(child);
    bases.push(`http://127.0.0.1:${apiPort}`);
    rest.push(waitReady(`http://127.0.0.1:${apiPort}/readyz`, child));
  }
  for (let i = 0; i < workerCount; i++) {
    const metricsPort = await freePort();
    const child = spawnTs(numbered("worker", i, workerCount), main, ["worker"], { cwd: config.root, env: { ...env, PORT: "", METRICS_PORT: String(metricsPort) } });
    children.push(child);
    workers.push(child);
    rest.push(waitReady(`http://127.0.0.1:${metricsPort}/readyz`, child));
  }
  await Promise.all(rest);
  const worker = workers[0];

  const client = await call<{ clientId: string; clientSecret: string }>("POST", `${base}/admin/v1/tenants/default/clients`, { token: adminToken, body: { name: "bench" }, expect: 201 });
  const { access_token: token } = await call<{ access_token: string }>("POST", `${base}/oauth/token`, {
    form: { grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret },
    expect: 200,
  });
  const processes = options.topology === "split" ? `split: ${apiCount} api + ${workerCount} worker` : options.topology;
  log(`ricochet ${name} (${processes}, ${database ? "postgres" : "pglite"}) ready in ${Math.round(performance.now() - started)} ms on ${bases.join(", ")}`);

  return {
    name,
    base,
    token,
    adminToken,
    api,
    worker,
    /** Every `api` process (the first is `api`) and every `worker` process, in start order. */
    apis,
    workers,
    /** The stack's own database (undefined on PGlite), e.g. to measure its size. */
    databaseUrl: database?.url,
    /** The process that runs the workers (the `worker` child, or the `start` one). */
    workerProcess: worker ?? (options.topology === "start" ? api : undefined),
    /**
     * Its processes, for CPU shares: ricochetApi + ricochetWorker, or ricochet (one process);
     * several of a kind each get their own, numbered: ricochetApi1, ricochetApi2, ….
     */
    cpuGroups: (): PidGroups => {
      if (!worker) return { ricochet: () => [api.pid] };
      const groups = (kind: string, list: Child[]): PidGroups =>
        Object.fromEntries(list.map((child, i) => [`${kind}${list.length > 1 ? i + 1 : ""}`, () => [child.pid]]));
      return { ...groups("ricochetApi", apis), ...groups("ricochetWorker", workers) };
    },
    submitUrl: `${base}/api/v1/async`,
    /** Every API's submit URL: a load generator spreads its connections over them. */
    submitUrls: bases.map((origin) => `${origin}/api/v1/async`),
    authHeaders: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    admin: <T>(method: "GET" | "POST", path: string, body?: unknown) => call<T>(method, `${base}${path}`, { token: adminToken, body, expect: 200 }),
    get: <T>(path: string) => call<T>("GET", `${base}${path}`, { token }),
    stop,
  };
}

/** The body every submit sends: the `echo` action, optionally with a callback. */
export const submitBody = (callbackUrl?: string) => JSON.stringify({ action: "echo", input: { data: "x" }, ...(callbackUrl ? { callbackUrl } : {}) });
