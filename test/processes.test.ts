import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { redisAnswers, redisServerPid, startManagedRedis } from "../src/infra/managed-redis.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { asyncRequests } from "../src/db/schema.js";
import { runCli, spawnRicochet, type RicochetProcess } from "./helpers/process.js";
import { deleteKeys, freePort, REDIS_URL, startPrivateRedis, uniquePrefix } from "./helpers/redis.js";
import { startTestRuntime, submit, waitForStatus, type AsyncRequestJson, type TestRuntime } from "./helpers/runtime.js";

describe("API and worker in separate processes", { timeout: 90_000 }, () => {
  let api: TestRuntime;
  const workers: RicochetProcess[] = [];
  const startWorker = async (extra: Record<string, string> = {}) => {
    const worker = spawnRicochet("worker", { ...api.env, JOB_LOCK_DURATION: "2s", ...extra });
    workers.push(worker);
    await worker.waitForOutput("ricochet worker started");
    return worker;
  };

  beforeAll(async () => {
    api = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.kill("SIGKILL")));
  });
  afterAll(() => api.stop());

  it("a long-poll returns as soon as a worker in another process changes the status", { timeout: 28_000 }, async () => {
    const { id } = await submit(api, { action: "echo", input: { delayMs: 60_000 } });
    // Asked to wait up to 30 s, inside a 28 s test: it passes only if the change wakes it.
    const longPoll = api.request(`/api/v1/async/${id}?wait=30`);
    await startWorker();
    const response = await longPoll;
    const { asyncRequest } = (await response.json()) as { asyncRequest: AsyncRequestJson };
    expect(asyncRequest.status).toBe("RUNNING");
    expect(response.headers.get("retry-after")).toBe("1");
    await api.request(`/api/v1/async/${id}`, { method: "DELETE" });
  });

  it("a worker killed mid-job: the request completes after a new worker starts", async () => {
    const first = await startWorker();
    const { id } = await submit(api, { action: "echo", input: { data: "survives", delayMs: 3_000, steps: 3 } });
    await waitForStatus(api, id, "RUNNING");
    const killed = await first.kill("SIGKILL");
    expect(killed.signal).toBe("SIGKILL");

    await startWorker();
    const done = await waitForStatus(api, id, "COMPLETED", 25_000);
    expect(done.asyncResponse?.errorCode).toBeNull();
    const result = (await (await api.request(`/api/v1/async/${id}/result`)).json()) as unknown;
    expect(result).toEqual({ echo: { data: "survives" } });
    const [row] = await api.db.db.select().from(asyncRequests).where(eq(asyncRequests.id, id));
    expect(row?.runs).toBe(2);
  });

  it("SIGTERM lets the active job finish before the worker exits; METRICS_PORT serves its metrics", async () => {
    const metricsPort = await freePort();
    const worker = await startWorker({ METRICS_PORT: String(metricsPort) });
    await worker.waitForOutput("ricochet worker serving /metrics");
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(await metrics.text()).toContain("ricochet_callback_attempts_total");
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/api/v1/async`)).status).toBe(404);
    const { id } = await submit(api, { action: "echo", input: { data: "finished", delayMs: 1_500 } });
    await waitForStatus(api, id, "RUNNING");
    const exit = await worker.kill("SIGTERM");
    expect(exit.code).toBe(0);
    expect(worker.output()).toContain("stopped");
    const [row] = await api.db.db.select().from(asyncRequests).where(eq(asyncRequests.id, id));
    expect(row).toMatchObject({ status: "COMPLETED", runs: 1, result: { data: "finished" } });
  });
});

describe("zero-config start", { timeout: 120_000 }, () => {
  it("one process per data directory: a second start and `ricochet migrate` refuse, naming the holder; set-limits default works through the server; a managed Redis on [::1]", async () => {
    const [redisPort, port, otherPort] = [await freePort(), await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), "ricochet-lock-"));
    const env = { REDIS_URL: `redis://[::1]:${redisPort}`, DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "" };
    const first = spawnRicochet("start", env);
    try {
      await first.waitForOutput("ricochet is listening");
      expect(await redisAnswers(`redis://[::1]:${redisPort}`, 500)).toBe(true);

      const second = spawnRicochet("start", { ...env, PORT: String(otherPort) });
      expect((await second.exited).code).toBe(1);
      expect(second.output()).toContain(`is in use by process ${first.child.pid}`);
      const migrate = await runCli(["migrate"], { DATA_DIR: dataDir, DATABASE_URL: "" });
      expect(migrate.code).toBe(1);
      expect(migrate.stderr).toContain(`is in use by process ${first.child.pid}`);

      const cliEnv = { DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "", RICOCHET_URL: "" };
      expect((await runCli(["tenants", "create", "acme", "--max-queued", "5"], cliEnv)).stdout).toContain("max queued 5");
      const reset = await runCli(["tenants", "set-limits", "acme", "--max-queued", "default"], cliEnv);
      expect(reset.stderr).toBe("");
      expect(reset.stdout).toContain("max queued 10000");
      expect((await first.kill("SIGTERM")).code).toBe(0);
      expect(existsSync(join(dataDir, "ricochet.lock"))).toBe(false);
    } finally {
      await first.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a private redis-server must be its own: another Redis that took the address first is an error, not a silent takeover", async () => {
    // The race this closes: REDIS_URL's port is free when checked, another redis-server binds it
    // before ours does; ours exits (address in use) and the other one answers PING.
    const other = await startPrivateRedis();
    const dataDir = mkdtempSync(join(tmpdir(), "ricochet-taken-"));
    try {
      const otherPid = await redisServerPid(other.url);
      expect(otherPid).toBeGreaterThan(0);
      await expect(startManagedRedis(other.url, dataDir)).rejects.toThrow(`another Redis (pid ${otherPid}) took the address first`);
      expect(await redisServerPid(other.url)).toBe(otherPid);

      // On a free port it starts, answers as itself, and stops.
      const url = `redis://127.0.0.1:${await freePort()}`;
      const managed = await startManagedRedis(url, dataDir);
      expect(await redisServerPid(url)).not.toBe(otherPid);
      await managed.stop();
      expect(await redisAnswers(url, 500)).toBe(false);
    } finally {
      await other.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("leaves no private redis-server behind when start-up fails after starting it", async () => {
    const [redisPort, port] = [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), "ricochet-fail-"));
    // The database named does not exist: start-up fails after the private Redis started.
    const proc = spawnRicochet("start", {
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      DATA_DIR: dataDir,
      PORT: String(port),
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/ricochet_no_such_database",
      SECRETS_KEY: Buffer.alloc(32, 5).toString("base64"),
    });
    try {
      expect((await proc.exited).code).not.toBe(0);
      expect(proc.output()).toContain("starting a private redis-server");
      expect(await redisAnswers(`redis://127.0.0.1:${redisPort}`, 500)).toBe(false);
    } finally {
      await proc.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("starts a private redis-server when none answers, serves, and stops it on SIGTERM", async () => {
    const [redisPort, port] = [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), "ricochet-start-"));
    const proc = spawnRicochet("start", { REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "" });
    try {
      await proc.waitForOutput("ricochet is listening");
      expect(proc.output()).toContain("starting a private redis-server");
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(await ready.json()).toEqual({ status: "ready", checks: { redis: "ok", database: "ok" } });

      // The README's path: the CLI creates a tenant and a client through the running server's
      // admin API (the admin token is in DATA_DIR), then the client gets a token and submits.
      const cliEnv = { DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "", RICOCHET_URL: "" };
      const tenant = await runCli(["tenants", "create", "acme", "--name", "Acme"], cliEnv);
      expect(tenant.stderr).toBe("");
      expect(tenant.stdout).toContain("tenant acme created");
      const created = await runCli(["--json", "clients", "create", "--tenant", "acme", "--name", "demo"], cliEnv);
      expect(created.code).toBe(0);
      const client = JSON.parse(created.stdout) as { clientId: string; clientSecret: string };
      const tokenResponse = await fetch(`http://127.0.0.1:${port}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }),
      });
      const { access_token } = (await tokenResponse.json()) as { access_token: string };
      const auth = { authorization: `Bearer ${access_token}` };
      const submitted = await fetch(`http://127.0.0.1:${port}/api/v1/async`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ action: "echo", input: { data: 1 } }),
      });
      expect(submitted.status).toBe(202);
      const { asyncRequest } = (await submitted.json()) as { asyncRequest: { id: string; createdBy: { clientId: string } } };
      expect(asyncRequest.createdBy.clientId).toBe(client.clientId);
      const polled = await fetch(`http://127.0.0.1:${port}/api/v1/async/${asyncRequest.id}?wait=10`, { headers: auth });
      expect(((await polled.json()) as { asyncRequest: { status: string } }).asyncRequest.status).toMatch(/RUNNING|COMPLETED/);
      expect(existsSync(join(dataDir, "pglite"))).toBe(true);
      expect((await proc.kill("SIGTERM")).code).toBe(0);
      expect(await redisAnswers(`redis://127.0.0.1:${redisPort}`, 500)).toBe(false);
    } finally {
      await proc.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("start-up refusals", { timeout: 60_000 }, () => {
  it("refuses a bad environment value with a message naming the variable", async () => {
    const proc = spawnRicochet("api", { PORT: "not-a-port", WORKER_CONCURRENCY: "0" });
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    expect(proc.output()).toContain("Invalid configuration");
    expect(proc.output()).toMatch(/PORT: .*number/);
    expect(proc.output()).toMatch(/WORKER_CONCURRENCY: .*>=1/);
    expect(proc.output()).not.toContain("not-a-port"); // values are never echoed: they may be secrets
  });

  it("exits when its port is taken, naming the variable to change, without a stack trace", async () => {
    const taken = createServer();
    await new Promise<void>((listening) => taken.listen(0, "127.0.0.1", listening));
    const port = (taken.address() as AddressInfo).port;
    const prefix = uniquePrefix();
    try {
      const secrets = { SECRETS_KEY: randomBytes(32).toString("base64"), ADMIN_TOKEN: randomBytes(24).toString("hex") };
      const proc = spawnRicochet("api", { ...secrets, PORT: String(port), HOST: "127.0.0.1", REDIS_URL, QUEUE_PREFIX: prefix, DATA_DIR: "memory://", DATABASE_URL: "" });
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      expect(proc.output()).toContain(`cannot listen on 127.0.0.1:${port}: the address is in use; set PORT to a free port`);
      expect(proc.output()).toContain('"msg":"stopped"');
      expect(proc.output()).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      taken.close();
      await deleteKeys(prefix);
    }
  });

  it("exits with instructions when Redis is unreachable", async () => {
    const port = await freePort();
    const proc = spawnRicochet("api", { REDIS_URL: `redis://127.0.0.1:${port}`, DATA_DIR: "memory://" });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    expect(proc.output()).toContain(`Redis is not reachable at redis://127.0.0.1:${port}`);
    expect(proc.output()).toContain("redis-server");
  });
});
