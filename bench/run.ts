/**
 * `npm run bench`: throughput and latency of the real stack on this machine. It starts the
 * API (a real HTTP server) and a worker in this process against the local Redis and a fresh
 * PostgreSQL database (or PGlite with BENCH_DB=pglite), and a local callback receiver, then:
 *   1. submit: POST /api/v1/async over HTTP, BENCH_SUBMITS requests at BENCH_CONCURRENCY;
 *   2. end to end: submit → COMPLETED (echo, no delay), observed with ?wait long-polls;
 *   3. callbacks: requests with a callbackUrl, from submit until the receiver has every one;
 *   4. outbound client: undici request (what Ricochet uses) against undici fetch, same receiver.
 * BENCH_WORKER=0 measures submit alone, with no worker in the process.
 * Results are printed as a table and written to bench/results.json.
 */
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { serve } from "@hono/node-server";
import { fetch as undiciFetch, request } from "undici";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { createRuntime } from "../src/runtime.js";
import { createTestDatabase } from "../test/helpers/db.js";
import { deleteKeys, freePort, uniquePrefix } from "../test/helpers/redis.js";

const SUBMITS = Number(process.env.BENCH_SUBMITS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const E2E = Number(process.env.BENCH_E2E ?? 300);
const CALLBACKS = Number(process.env.BENCH_CALLBACKS ?? 1000);
const OUTBOUND = Number(process.env.BENCH_OUTBOUND ?? 5000);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const round = (n: number) => Math.round(n * 10) / 10;

async function pool<T>(count: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await work(i);
      }
    }),
  );
  return results;
}

async function main() {
  const db = await createTestDatabase(process.env.BENCH_DB === "pglite" ? "pglite" : "postgres");
  const prefix = uniquePrefix();
  const receiverDone = new Set<string>();
  let receiverWaiter: (() => void) | undefined;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.headers["webhook-id"]) {
        receiverDone.add(String(req.headers["webhook-id"]));
        receiverWaiter?.();
      }
      res.writeHead(200).end("ok");
    });
  });
  const receiverPort = await freePort();
  await new Promise<void>((resolve) => receiver.listen(receiverPort, "127.0.0.1", resolve));

  const port = await freePort();
  const config = loadConfig({
    ...process.env,
    PORT: String(port),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: "warn",
    DATABASE_URL: db.url ?? "",
    DATA_DIR: "memory://",
    SECRETS_KEY: Buffer.alloc(32, 9).toString("base64"),
    OUTBOUND_ALLOW: "127.0.0.1/32",
    WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? "50",
    DEFAULT_MAX_CONCURRENT: "1000",
    DEFAULT_MAX_QUEUED: "1000000",
  });
  const withWorker = process.env.BENCH_WORKER !== "0";
  const runtime = await createRuntime(config, { logger: createLogger("warn"), roles: { api: true, worker: withWorker }, database: db });
  const server = serve({ fetch: runtime.app!.fetch, port, hostname: "127.0.0.1" });
  const base = `http://127.0.0.1:${port}`;

  const client = await runtime.services.admin.createClient({ tenantId: "default", name: "bench" });
  const { access_token } = await runtime.services.oauth.issueToken({ clientId: client.clientId, clientSecret: client.clientSecret, usedBasic: false }, "*");
  const headers = { authorization: `Bearer ${access_token}`, "content-type": "application/json" };
  const post = async (body: unknown) => {
    const response = await request(`${base}/api/v1/async`, { method: "POST", headers, body: JSON.stringify(body) });
    const json = (await response.body.json()) as { asyncRequest: { id: string } };
    if (response.statusCode !== 202) throw new Error(`submit answered ${response.statusCode}: ${JSON.stringify(json)}`);
    return json.asyncRequest.id;
  };
  const results: Record<string, unknown> = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, database: db.kind },
  };

  // 1. Submit throughput (the worker runs too, as in production).
  {
    const latencies: number[] = [];
    const started = performance.now();
    await pool(SUBMITS, CONCURRENCY, async () => {
      const t = performance.now();
      await post({ action: "echo", input: { data: "bench" } });
      latencies.push(performance.now() - t);
    });
    const seconds = (performance.now() - started) / 1000;
    results.submit = { requests: SUBMITS, concurrency: CONCURRENCY, perSecond: round(SUBMITS / seconds), p50ms: round(percentile(latencies, 50)), p99ms: round(percentile(latencies, 99)) };
  }

  if (!withWorker) {
    // Submit only: the API on its own.
    console.table({ submit: results.submit });
    server.close();
    await runtime.close();
    receiver.close();
    await db.drop();
    await deleteKeys(prefix);
    return;
  }

  // Let the backlog drain before measuring latency.
  for (;;) {
    const counts = await runtime.services.asyncRequests.limits({ tenantId: "default", clientId: client.clientId });
    if (counts.queued.count === 0 && counts.concurrentRequests.count === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // 2. End to end: submit → COMPLETED.
  {
    const latencies: number[] = [];
    await pool(E2E, 8, async () => {
      const t = performance.now();
      const id = await post({ action: "echo", input: {} });
      for (;;) {
        const response = await request(`${base}/api/v1/async/${id}?wait=10`, { headers });
        const { asyncRequest } = (await response.body.json()) as { asyncRequest: { status: string } };
        if (asyncRequest.status === "COMPLETED") break;
      }
      latencies.push(performance.now() - t);
    });
    results.endToEnd = { requests: E2E, concurrency: 8, p50ms: round(percentile(latencies, 50)), p99ms: round(percentile(latencies, 99)) };
  }

  // 3. Callbacks: submit with a callbackUrl until the receiver has every delivery.
  {
    receiverDone.clear();
    const started = performance.now();
    await pool(CALLBACKS, CONCURRENCY, () => post({ action: "echo", input: {}, callbackUrl: `http://127.0.0.1:${receiverPort}/hook` }));
    await new Promise<void>((resolve) => {
      receiverWaiter = () => receiverDone.size >= CALLBACKS && resolve();
      receiverWaiter();
    });
    const seconds = (performance.now() - started) / 1000;
    results.callbacks = { requests: CALLBACKS, seconds: round(seconds), deliveredPerSecond: round(CALLBACKS / seconds) };
  }

  // 4. The outbound client: undici request against undici fetch.
  {
    const url = `http://127.0.0.1:${receiverPort}/plain`;
    const timeIt = async (send: () => Promise<void>) => {
      const started = performance.now();
      await pool(OUTBOUND, 16, send);
      return round(OUTBOUND / ((performance.now() - started) / 1000));
    };
    const viaRequest = await timeIt(async () => {
      const response = await request(url, { method: "POST", body: "{}" });
      await response.body.text();
    });
    const viaFetch = await timeIt(async () => {
      const response = await undiciFetch(url, { method: "POST", body: "{}" });
      await response.text();
    });
    results.outbound = { requests: OUTBOUND, concurrency: 16, undiciRequestPerSecond: viaRequest, undiciFetchPerSecond: viaFetch, ratio: round(viaRequest / viaFetch) };
  }

  console.table(
    Object.fromEntries(Object.entries(results).filter(([key]) => key !== "machine")) as Record<string, Record<string, unknown>>,
  );
  console.log(JSON.stringify(results.machine));
  writeFileSync(new URL("./results.json", import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`);

  server.close();
  await runtime.close();
  receiver.close();
  await db.drop();
  await deleteKeys(prefix);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
