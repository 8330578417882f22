import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Queue, QueueEvents } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readQueueStats } from "../src/infra/queue-stats.js";
import { attemptOutcomeClass } from "../src/worker/deliver-callback.js";
import { spawnRicochet } from "./helpers/process.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { freePort, REDIS_URL, uniquePrefix, deleteKeys } from "./helpers/redis.js";
import { jsonBody, startRuntimeWithReceiver, startTestRuntime, submit, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

/** A scrape, read as Prometheus' text format: one sample by name and exact label set. */
class Scrape {
  readonly samples = new Map<string, number>();
  constructor(readonly text: string) {
    for (const line of text.split("\n")) {
      const match = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
      if (!match) continue;
      const labels = [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, name, value]) => [name!, value!] as const);
      this.samples.set(Scrape.key(match[1]!, Object.fromEntries(labels)), Number(match[3]));
    }
  }
  static key(name: string, labels: Record<string, string>) {
    return `${name}{${Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${v}"`).join(",")}}`;
  }
  /** The sample's value; 0 when absent (a labelled counter appears with its first increment). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples.get(Scrape.key(name, labels)) ?? 0;
  }
  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.samples.has(Scrape.key(name, labels));
  }
}

const scrape = async (rt: TestRuntime) => {
  const response = await rt.rawRequest("/metrics");
  expect(response.status).toBe(200);
  return new Scrape(await response.text());
};

/** promtool reads the scrape on stdin; a lint problem exits non-zero and fails the test (so does a missing promtool). */
const promtoolCheckMetrics = (text: string) => execFileSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });

describe("metrics after known traffic", { timeout: 60_000 }, () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  let stop: () => Promise<void>;
  beforeAll(async () => ({ rt, receiver, stop } = await startRuntimeWithReceiver()));
  afterAll(() => stop());

  it("counts requests by action and final status: 3 COMPLETED, 1 FAILED, 1 CANCELLED, and times every run", async () => {
    const before = await scrape(rt);
    const completed = await Promise.all([1, 2, 3].map(() => submit(rt, { action: "echo", input: { data: 1 } })));
    const failed = await submit(rt, { action: "echo", input: { fail: { code: "NOPE" } } });
    await Promise.all(completed.map(({ id }) => waitForStatus(rt, id, "COMPLETED")));
    await waitForStatus(rt, failed.id, "FAILED");

    // Cancelled while running: the API writes CANCELLED, the aborted run finds it already final.
    // Counted once, not twice; the aborted run is timed all the same.
    const running = await submit(rt, { action: "echo", input: { delayMs: 60_000 } });
    await waitForStatus(rt, running.id, "RUNNING");
    const runEnded = new Promise<void>((resolve) => rt.workers!.worker.on("completed", (job) => job.id === running.id && resolve()));
    expect((await rt.request(`/api/v1/async/${running.id}`, { method: "DELETE" })).status).toBe(200);
    await runEnded;

    const after = await scrape(rt);
    const delta = (status: string) => after.value("ricochet_requests_finished_total", { action: "echo", status }) - before.value("ricochet_requests_finished_total", { action: "echo", status });
    expect({ COMPLETED: delta("COMPLETED"), FAILED: delta("FAILED"), CANCELLED: delta("CANCELLED") }).toEqual({ COMPLETED: 3, FAILED: 1, CANCELLED: 1 });
    const runs = after.value("ricochet_action_duration_seconds_count", { action: "echo" }) - before.value("ricochet_action_duration_seconds_count", { action: "echo" });
    expect(runs).toBe(5);
  });

  it("classes callback attempts: a 500 then a 200 count as 5xx=1 and 200=1; finish to delivery is observed once", async () => {
    receiver.on("/hooks/flaky", (_req, res, count) => res.writeHead(count === 1 ? 500 : 200).end("x"));
    const before = await scrape(rt);
    const started = performance.now();
    const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/flaky") }));
    const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
    await waitForCallback(rt, rt, id, "DELIVERED");
    const elapsed = (performance.now() - started) / 1000;

    const after = await scrape(rt);
    const attempts = (outcome: string) => after.value("ricochet_callback_attempts_total", { outcome }) - before.value("ricochet_callback_attempts_total", { outcome });
    expect({ "5xx": attempts("5xx"), "200": attempts("200"), "4xx": attempts("4xx"), network: attempts("network") }).toEqual({ "5xx": 1, "200": 1, "4xx": 0, network: 0 });
    expect(after.value("ricochet_callback_delivery_lag_seconds_count") - before.value("ricochet_callback_delivery_lag_seconds_count")).toBe(1);
    // From the finish to the 200: the 50 ms retry delay lies in between.
    const lag = after.value("ricochet_callback_delivery_lag_seconds_sum") - before.value("ricochet_callback_delivery_lag_seconds_sum");
    expect(lag).toBeGreaterThanOrEqual(0.05);
    expect(lag).toBeLessThan(elapsed);
    expect(after.value("ricochet_callback_attempt_seconds_count") - before.value("ricochet_callback_attempt_seconds_count")).toBe(2);
  });

  it("classes a receiver's 404 as 4xx and a refused connection as network; both series end EXHAUSTED", async () => {
    receiver.on("/hooks/gone", (_req, res) => res.writeHead(404).end());
    const closedPort = await freePort();
    const before = await scrape(rt);
    const ids = await Promise.all(
      [receiver.url("/hooks/gone"), `http://127.0.0.1:${closedPort}/hooks`].map(async (callbackUrl) => {
        const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl }));
        return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
      }),
    );
    await Promise.all(ids.map((id) => waitForCallback(rt, rt, id, "EXHAUSTED")));
    const after = await scrape(rt);
    const attempts = (outcome: string) => after.value("ricochet_callback_attempts_total", { outcome }) - before.value("ricochet_callback_attempts_total", { outcome });
    expect({ "4xx": attempts("4xx"), network: attempts("network"), "5xx": attempts("5xx") }).toEqual({ "4xx": 2, network: 2, "5xx": 0 });
    expect(after.value("ricochet_callbacks_exhausted_total") - before.value("ricochet_callbacks_exhausted_total")).toBe(2);
  });

  it("names every outcome class: status classes, timeout, network, and the address policy's refusals as blocked", () => {
    expect([200, 204, 301, 404, 429, 500, 503].map((status) => attemptOutcomeClass(status, status === 200 ? null : "http_status"))).toEqual(["200", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx"]);
    const errors = ["timeout", "blocked_address", "invalid_url", "dns_failure", "connection_refused", "connection_reset", "tls_error", "network_error"] as const;
    expect(errors.map((errorClass) => attemptOutcomeClass(null, errorClass))).toEqual(["timeout", "blocked", "blocked", "network", "network", "network", "network", "network"]);
  });

  it("counts HTTP requests under their route templates, never the raw path", async () => {
    const missing = randomUUID();
    const before = await scrape(rt);
    expect((await rt.request(`/api/v1/async/${missing}`)).status).toBe(404); // the handler's 404
    expect((await rt.rawRequest(`/api/v1/async/${missing}`)).status).toBe(401); // refused by the auth middleware
    expect((await rt.request("/api/v1/async/limits")).status).toBe(200); // not taken for /:id
    expect((await rt.request(`/no/such/${missing}`)).status).toBe(404);
    expect((await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(202);
    const after = await scrape(rt);

    const count = (method: string, route: string, status: string) =>
      after.value("ricochet_http_requests_total", { method, route, status }) - before.value("ricochet_http_requests_total", { method, route, status });
    expect(count("GET", "/api/v1/async/:id", "404")).toBe(1);
    expect(count("GET", "/api/v1/async/:id", "401")).toBe(1);
    expect(count("GET", "/api/v1/async/limits", "200")).toBe(1);
    expect(count("GET", "unmatched", "404")).toBe(1);
    expect(count("POST", "/api/v1/async", "202")).toBe(1);
    const timed = (route: string, method: string) =>
      after.value("ricochet_http_request_duration_seconds_count", { method, route }) - before.value("ricochet_http_request_duration_seconds_count", { method, route });
    expect(timed("/api/v1/async/:id", "GET")).toBe(2);
    expect(timed("/api/v1/async", "POST")).toBe(1);
    expect(after.text).not.toContain(missing);
    expect(after.text).not.toContain("/no/such");
  });
});

describe("queue gauges, read from Redis at scrape time", { timeout: 60_000 }, () => {
  it("queue depth shows delayed callbacks; a callback not yet due is not waiting", async () => {
    const receiver = await startReceiver();
    receiver.on("/hooks/down", (_req, res) => res.writeHead(503).end());
    const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "1h", CALLBACK_TIMEOUT: "2s" } });
    const events = new QueueEvents("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      await events.waitUntilReady();
      const delayed = new Set<string>();
      const bothDelayed = new Promise<void>((resolve) =>
        events.on("delayed", ({ jobId }) => {
          delayed.add(jobId);
          if (delayed.size === 2) resolve();
        }),
      );
      const ids = await Promise.all([1, 2].map(async () => {
        const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/down") }));
        return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
      }));
      await Promise.all(ids.map((id) => waitForCallback(rt, rt, id, "RETRYING")));
      await bothDelayed;

      const metrics = await scrape(rt);
      expect(metrics.value("ricochet_queue_jobs", { queue: "callbacks", state: "delayed" })).toBe(2);
      expect(metrics.value("ricochet_queue_jobs", { queue: "callbacks", state: "waiting" })).toBe(0);
      expect(metrics.has("ricochet_queue_jobs", { queue: "jobs", state: "waiting" })).toBe(true);
      expect(metrics.value("ricochet_queue_jobs", { queue: "jobs", state: "waiting" })).toBe(0);
      expect(metrics.has("ricochet_queue_oldest_waiting_seconds", { queue: "callbacks" })).toBe(true);
      expect(metrics.value("ricochet_queue_oldest_waiting_seconds", { queue: "callbacks" })).toBe(0); // due in an hour
    } finally {
      await events.close();
      await rt.stop();
      await receiver.close();
    }
  });

  it("with no worker, requests wait: depth and the age of the oldest", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false } });
    const queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      const submitted = performance.now();
      await submit(rt, { action: "echo", input: {} });
      await submit(rt, { action: "echo", input: {} });
      const metrics = await scrape(rt);
      const elapsed = (performance.now() - submitted) / 1000;
      expect(metrics.value("ricochet_queue_jobs", { queue: "jobs", state: "waiting" })).toBe(2);
      const age = metrics.value("ricochet_queue_oldest_waiting_seconds", { queue: "jobs" });
      expect(metrics.has("ricochet_queue_oldest_waiting_seconds", { queue: "jobs" })).toBe(true);
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThanOrEqual(elapsed + 0.01);
      // A minute on (the read takes "now" as an argument): the oldest has waited a minute.
      const later = await readQueueStats(queue, Date.now() + 60_000);
      expect(later.oldestWaitingSeconds).toBeGreaterThanOrEqual(60);
      expect(later.oldestWaitingSeconds).toBeLessThanOrEqual(60 + elapsed + 1);
    } finally {
      await queue.close();
      await rt.stop();
    }
  });

  it("a delayed job counts as waiting once due (no worker moves it), and not before", async () => {
    const prefix = uniquePrefix();
    const queue = new Queue("probe", { connection: { url: REDIS_URL }, prefix });
    try {
      const added = Date.now();
      await queue.add("x", {}, { delay: 1_000 });
      expect((await readQueueStats(queue, added)).oldestWaitingSeconds).toBe(0);
      const overdue = await readQueueStats(queue, added + 5_000);
      expect(overdue.counts.delayed).toBe(1);
      expect(overdue.oldestWaitingSeconds).toBeGreaterThan(3.5); // due at added + 1 s, give or take the add's own time
      expect(overdue.oldestWaitingSeconds).toBeLessThanOrEqual(4);
      // In the wait list, a job added with a delay counts from when it fell due.
      await queue.promoteJobs();
      const promoted = await readQueueStats(queue, added + 5_000);
      expect(promoted.counts).toMatchObject({ waiting: 1, delayed: 0 });
      expect(promoted.oldestWaitingSeconds).toBeGreaterThan(3.5);
      expect(promoted.oldestWaitingSeconds).toBeLessThanOrEqual(4);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await deleteKeys(prefix);
    }
  });
});

describe("promtool", { timeout: 60_000 }, () => {
  it("check metrics passes on the API's scrape after traffic and on a worker's METRICS_PORT", async () => {
    const receiver = await startReceiver();
    const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32" } });
    const port = await freePort();
    const worker = spawnRicochet("worker", { ...rt.env, METRICS_PORT: String(port) });
    try {
      // Every kind of series has a sample: counters, histograms with labels, queue gauges.
      const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/ok") }));
      const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
      await waitForCallback(rt, rt, id, "DELIVERED");
      await rt.request("/nowhere");
      const api = (await scrape(rt)).text;
      expect(api).toMatch(/^ricochet_http_request_duration_seconds_bucket\{/m);
      expect(api).toMatch(/^ricochet_queue_jobs\{queue="jobs",state="waiting"\} \d+$/m);
      // Default process metrics under one prefix (it used to be doubled: ricochet_process_process_…).
      expect(api).toMatch(/^ricochet_process_cpu_seconds_total \S+$/m);
      expect(api).toMatch(/^ricochet_nodejs_eventloop_lag_p99_seconds \S+$/m);
      expect(promtoolCheckMetrics(api)).toBe("");

      await worker.waitForOutput("ricochet worker serving /metrics");
      const scraped = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(scraped.status).toBe(200);
      const text = await scraped.text();
      expect(text).toMatch(/^ricochet_queue_oldest_waiting_seconds\{queue="callbacks"\} \S+$/m);
      expect(promtoolCheckMetrics(text)).toBe("");
    } finally {
      await worker.kill();
      await rt.stop();
      await receiver.close();
    }
  });

  it("check rules accepts ops/alerts.yml and its unit tests pass", () => {
    expect(execFileSync("promtool", ["check", "rules", "ops/alerts.yml"], { encoding: "utf8" })).toMatch(/SUCCESS: \d+ rules found/);
    expect(execFileSync("promtool", ["test", "rules", "ops/alerts.test.yml"], { encoding: "utf8" })).toContain("SUCCESS");
  });
});
