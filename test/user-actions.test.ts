/**
 * Actions a team writes: loaded from a module named in ACTIONS, checked at start-up, run end to
 * end with their own policies (time limit, concurrency, retries, input size), and described in
 * GET /api/v1/actions and /openapi.json. The fixtures are in test/fixtures/actions/.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRicochet, defineAction, z } from "../src/index.js";
import { createRuntime } from "../src/runtime.js";
import { createTestDatabase } from "./helpers/db.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { loadActionModules } from "../src/core/actions/load.js";
import { bootstrapClient, spawnRicochet } from "./helpers/process.js";
import { deleteKeys, freePort, REDIS_URL, uniquePrefix } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, startupError as startupErrorOf, submit, TEST_ADMIN_TOKEN, TEST_SECRETS_KEY, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/actions/${name}.ts`, import.meta.url));

/** GET …/result answers `{<resultKey>: result}`. */
async function resultOf<T>(rt: TestRuntime, id: string, resultKey: string): Promise<T> {
  const response = await rt.request(`/api/v1/async/${id}/result`);
  expect(response.status).toBe(200);
  return ((await response.json()) as Record<string, T>)[resultKey]!;
}

describe("user actions loaded from ACTIONS", { timeout: 60_000 }, () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  let upstream: Server;
  let upstreamUrl: string;
  let upstreamFailures = 0;

  beforeAll(async () => {
    receiver = await startReceiver();
    upstream = createServer((req, res) => {
      if (upstreamFailures > 0) {
        upstreamFailures--;
        res.writeHead(503).end("busy");
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" }).end(`hello, ${new URL(req.url!, "http://x").searchParams.get("name")}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/greet`;
    rt = await startTestRuntime({ env: { ACTIONS: fixture("good"), OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "50ms", WORKER_CONCURRENCY: "8", TENANT_SLOT_RETRY: "50ms" } });
  });
  afterAll(async () => {
    await rt?.stop();
    await receiver.close();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it("runs an I/O-bound user action end to end and delivers its signed callback, the result under its resultKey", async () => {
    const request = await submit(rt, { action: "greet", input: { url: upstreamUrl, name: "Ada" }, callbackUrl: receiver.url("/hooks/greet") });
    await waitForCallback(rt, rt, request.id, "DELIVERED");
    const [delivery] = receiver.requestsTo("/hooks/greet");
    expect(JSON.parse(delivery!.body)).toMatchObject({ asyncRequest: { id: request.id, status: "COMPLETED", attempts: 1 }, greeting: { greeting: "hello, Ada", status: 200 } });
    expect(await resultOf(rt, request.id, "greeting")).toEqual({ greeting: "hello, Ada", status: 200 });
  });

  it("runs a CPU-bound user action in the thread pool", async () => {
    const request = await submit(rt, { action: "primes", input: { n: 1_000_000 } });
    await waitForStatus(rt, request.id, "COMPLETED");
    expect(await resultOf(rt, request.id, "primes")).toEqual({ count: 78_498 });
  });

  it("shows each action's input and result JSON Schemas and its policy", async () => {
    const { actions } = (await (await rt.request("/api/v1/actions")).json()) as { actions: { name: string; inputSchema: { properties: object }; resultSchema: { properties: object } | null; policy: object }[] };
    expect(actions.map((a) => a.name).sort()).toEqual(["analyse", "echo", "flaky", "gated", "greet", "primes", "stuck"]);
    const greet = actions.find((a) => a.name === "greet")!;
    expect(Object.keys(greet.inputSchema.properties)).toEqual(["url", "name"]);
    expect(Object.keys(greet.resultSchema!.properties)).toEqual(["greeting", "status"]);
    expect(greet.policy).toMatchObject({ runIn: "loop", maxInputBytes: 200, retry: { attempts: 1 } });
    expect(actions.find((a) => a.name === "primes")!.policy).toMatchObject({ runIn: "thread" });
    expect(actions.find((a) => a.name === "flaky")!.policy).toMatchObject({ retry: { attempts: 3, backoffMs: [100, 200] } });
  });

  it("validates a user action's input, and its size limit, at submit (422, nothing written)", async () => {
    const bad = await rt.request("/api/v1/async", jsonBody({ action: "greet", input: { url: "not a url", name: "x" } }));
    expect(bad.status).toBe(422);
    const big = await rt.request("/api/v1/async", jsonBody({ action: "greet", input: { url: upstreamUrl, name: "x".repeat(40), pad: "y".repeat(300) } }));
    expect(big.status).toBe(422);
    expect(await big.json()).toMatchObject({ errors: [{ path: "input", message: expect.stringMatching(/^must be at most 200 bytes of JSON/) }] });
  });

  it("ends a run at the action's own time limit", async () => {
    const request = await submit(rt, { action: "stuck", input: {} });
    const done = await waitForStatus(rt, request.id, "FAILED");
    expect(done.asyncResponse).toMatchObject({ errorCode: "ACTION_TIMEOUT", errorDesc: expect.stringContaining("150 ms") });
  });

  it("runs at most `concurrency` of an action at once in a worker process, though the worker could run more", async () => {
    const requests = await Promise.all(Array.from({ length: 4 }, () => submit(rt, { action: "gated", input: { holdMs: 150 } })));
    for (const r of requests) await waitForStatus(rt, r.id, "COMPLETED");
    const seen = await Promise.all(requests.map((r) => resultOf<{ activeAtStart: number }>(rt, r.id, "gated")));
    expect(seen.map((s) => s.activeAtStart)).toEqual([1, 1, 1, 1]);
  });

  it("retries transient failures by its retry policy, spaced by its backoff, and shows the runs as attempts", async () => {
    const recovered = await submit(rt, { action: "flaky", input: { key: "a", succeedOn: 3 } });
    const done = await waitForStatus(rt, recovered.id, "COMPLETED");
    expect(done.attempts).toBe(3);
    const { runs, gapsMs } = await resultOf<{ runs: number; gapsMs: number[] }>(rt, recovered.id, "flaky");
    expect(runs).toBe(3);
    expect(gapsMs[0]).toBeGreaterThanOrEqual(100);
    expect(gapsMs[1]).toBeGreaterThanOrEqual(200);

    const exhausted = await submit(rt, { action: "flaky", input: { key: "b", succeedOn: 10 } });
    const failed = await waitForStatus(rt, exhausted.id, "FAILED");
    expect(failed).toMatchObject({ attempts: 3, asyncResponse: { errorCode: "ACTION_ERROR" } });

    // An ActionError is not transient: no retry.
    const permanent = await submit(rt, { action: "flaky", input: { key: "c", succeedOn: 1, permanent: true } });
    expect(await waitForStatus(rt, permanent.id, "FAILED")).toMatchObject({ attempts: 1, asyncResponse: { errorCode: "BAD_REQUEST" } });

    // A RetryableError from the upstream: retried, then its own code when it never recovers.
    // (greet has no retry policy: one run, and its RetryableError's code is the request's.)
    upstreamFailures = 1;
    const once = await submit(rt, { action: "greet", input: { url: upstreamUrl, name: "Bob" } });
    expect(await waitForStatus(rt, once.id, "FAILED")).toMatchObject({ attempts: 1, asyncResponse: { errorCode: "UPSTREAM_DOWN" } });
  });
});

describe("start-up checks of the action catalog", { timeout: 60_000 }, () => {
  const startupError = (env: Record<string, string>, actions?: Parameters<typeof createRuntime>[1]["actions"]) =>
    startupErrorOf({ REDIS_URL, ...env }, { roles: { api: true, worker: true }, ...(actions ? { actions } : {}) });

  it("refuses, naming the module and the reason: a duplicate name, a bad schema, a module that throws, one with no action, one not found", async () => {
    expect(await startupError({ ACTIONS: fixture("duplicate") })).toMatch(/action "echo" is defined twice: in built-in and in file:.*duplicate\.ts/);
    expect(await startupError({ ACTIONS: fixture("bad-schema") })).toMatch(/action "shapeless" \(file:.*bad-schema\.ts\): input must be a zod schema/);
    expect(await startupError({ ACTIONS: fixture("broken") })).toMatch(/ACTIONS: ".*broken\.ts" failed to load: the upstream SDK is not configured/);
    expect(await startupError({ ACTIONS: fixture("empty") })).toMatch(/ACTIONS: ".*empty\.ts" exports no action made with defineAction/);
    expect(await startupError({ ACTIONS: "./no/such/actions.ts" })).toMatch(/ACTIONS: "\.\/no\/such\/actions\.ts" cannot be found/);
    expect(await startupError({ BUILTIN_ACTIONS: "echo,resize" })).toMatch(/BUILTIN_ACTIONS: there is no built-in action "resize"/);
    expect(await startupError({ BUILTIN_ACTIONS: "http" })).toMatch(/BUILTIN_ACTIONS: "http" needs HTTP_ACTION_UPSTREAMS/);
    // Every problem at once, not one per restart.
    const both = await startupError({ ACTIONS: `${fixture("duplicate")},${fixture("bad-schema")}` });
    expect(both.split("\n  - ")).toHaveLength(3);
  });

  it("refuses bad policies and a thread action given in code", async () => {
    const base = { description: "d", input: z.object({}), resultKey: "r", run: async () => ({}) };
    const sourced = (action: object) => [{ action: defineAction({ name: "p", ...base, ...action } as never), source: "createRicochet" }];
    expect(await startupError({}, sourced({ concurrency: 0 }))).toMatch(/action "p" \(createRicochet\): concurrency must be a positive integer/);
    expect(await startupError({}, sourced({ retry: { attempts: 0 } }))).toMatch(/retry.attempts must be an integer from 1 to 100/);
    expect(await startupError({}, sourced({ timeLimitMs: -1 }))).toMatch(/timeLimitMs must be a positive integer/);
    expect(await startupError({}, sourced({ runIn: "thread" }))).toMatch(/runs in a thread, so it must be loaded from a module/);
    expect(await startupError({}, sourced({ resultKey: "asyncRequest" }))).toMatch(/resultKey must be a name .* other than "asyncRequest"/);
  });

  it("offers only the built-in actions named in BUILTIN_ACTIONS (none: only the user's)", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { BUILTIN_ACTIONS: "none", ACTIONS: fixture("good") } });
    try {
      const { actions } = (await (await rt.request("/api/v1/actions")).json()) as { actions: { name: string }[] };
      expect(actions.map((a) => a.name)).not.toContain("echo");
      expect((await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {} }))).status).toBe(422);
    } finally {
      await rt.stop();
    }
  });
});

describe("ACTIONS from a package, and in the ricochet command", { timeout: 90_000 }, () => {
  it("loads a package by name from the working directory's node_modules", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ricochet-actions-pkg-"));
    try {
      const pkg = join(dir, "node_modules", "acme-actions");
      mkdirSync(pkg, { recursive: true });
      writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "acme-actions", type: "module", exports: "./index.js" }));
      // Plain JavaScript, branded the way defineAction brands (Symbol.for: any copy of Ricochet).
      writeFileSync(
        join(pkg, "index.js"),
        'export const ping = Object.defineProperty({ name: "ping", description: "pong", input: { safeParse: () => ({ success: true }) }, resultKey: "pong", run: async () => ({}) }, Symbol.for("ricochet.action"), { value: true });\n',
      );
      const loaded = await loadActionModules(["acme-actions"], dir);
      expect(loaded.map(({ action, source }) => [action.name, source])).toEqual([["ping", pathToFileURL(join(pkg, "index.js")).href]]);
      await expect(loadActionModules(["no-such-package"], dir)).rejects.toThrow(/ACTIONS: "no-such-package" cannot be found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("`ricochet api` serves the actions of ACTIONS, and refuses to start (exit 1, the reason on stderr) with a broken module", async () => {
    const db = await createTestDatabase();
    const prefix = uniquePrefix();
    const env = { DATABASE_URL: db.url!, REDIS_URL, QUEUE_PREFIX: prefix, SECRETS_KEY: TEST_SECRETS_KEY, ADMIN_TOKEN: TEST_ADMIN_TOKEN, HOST: "127.0.0.1" };
    const port = await freePort();
    const api = spawnRicochet("api", { ...env, PORT: String(port), ACTIONS: fixture("good") });
    try {
      await api.waitForOutput("ricochet is listening", 60_000);
      const base = `http://127.0.0.1:${port}`;
      const { auth } = await bootstrapClient(base, TEST_ADMIN_TOKEN);
      const { actions } = (await (await fetch(`${base}/api/v1/actions`, { headers: auth })).json()) as { actions?: { name: string }[] };
      expect(actions?.map((a) => a.name)).toContain("greet");
    } finally {
      await api.kill();
    }
    const broken = spawnRicochet("worker", { ...env, ACTIONS: fixture("broken") });
    const exit = await broken.exited;
    expect(exit.code).toBe(1);
    expect(broken.output()).toMatch(/ricochet failed to start: The action catalog is not valid:\n {2}- ACTIONS: ".*broken\.ts" failed to load: the upstream SDK is not configured/);
    await db.drop();
    await deleteKeys(prefix);
  });
});

describe("API and worker processes that disagree on the catalog", { timeout: 60_000 }, () => {
  it("leaves a request for a worker that has its action (reported, not failed)", async () => {
    const api = await startTestRuntime({ roles: { api: true, worker: false }, env: { ACTIONS: fixture("good"), LOG_LEVEL: "info" } });
    const shared = { db: api.db, env: { QUEUE_PREFIX: api.config.queuePrefix } };
    const stale = await startTestRuntime({ ...shared, roles: { api: false, worker: true } });
    let current: TestRuntime | undefined;
    try {
      const request = await submit(api, { action: "gated", input: { holdMs: 0 } });
      const deadline = Date.now() + 10_000;
      while (!stale.logs.text.includes("this worker has no such action") && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20));
      expect(stale.logs.text).toContain("this worker has no such action");
      // …and the stale worker said so at start-up, naming the actions only the API has.
      const report = stale.logs.lines.map((l) => JSON.parse(l) as { msg: string; onlyThere?: string[] }).find((l) => l.msg.startsWith("another process of this deployment offers a different action catalog"));
      expect(report?.onlyThere?.sort()).toEqual(["flaky", "gated", "greet", "primes", "stuck"]);
      expect(await (await stale.services.metrics.registry.getSingleMetric("ricochet_catalog_mismatched_processes")!.get()).values[0]!.value).toBe(1);
      // Not claimed, not failed: still QUEUED.
      expect((await (await api.request(`/api/v1/async/${request.id}`)).json()) as object).toMatchObject({ asyncRequest: { status: "QUEUED" } });
      // A job enqueued by an older version names no action: the stale worker reads it and still
      // leaves the request unclaimed.
      const jobs = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: api.config.queuePrefix });
      try {
        const before = stale.logs.text.split("this worker has no such action").length;
        await (await jobs.getJob(request.id))?.remove();
        await jobs.add("run", { requestId: request.id }, { jobId: request.id });
        const until = Date.now() + 10_000;
        while (stale.logs.text.split("this worker has no such action").length === before && Date.now() < until) await new Promise((done) => setTimeout(done, 20));
        expect(stale.logs.text.split("this worker has no such action").length).toBeGreaterThan(before);
      } finally {
        await jobs.close();
      }
      expect((await api.db.sql.query<{ status: string; runs: number }>("select status, runs from async_requests where id = $1", [request.id]))[0]).toEqual({ status: "QUEUED", runs: 0 });
      // The deploy completes: the stale worker goes, one with the action runs it.
      await stale.stop();
      current = await startTestRuntime({ ...shared, roles: { api: false, worker: true }, env: { ...shared.env, ACTIONS: fixture("good") } });
      expect(await waitForStatus(api, request.id, "COMPLETED", 20_000)).toMatchObject({ status: "COMPLETED" });
    } finally {
      await current?.stop();
      await stale.stop().catch(() => {});
      await api.stop();
    }
  });
});

describe("createRicochet: the service embedded in a program", { timeout: 60_000 }, () => {
  it("starts with actions given in code, serves its Hono app, runs them on the real loop, and stops", async () => {
    const db = await createTestDatabase();
    const prefix = uniquePrefix();
    const shout = defineAction({
      name: "shout",
      description: "Upper-cases a text",
      input: z.object({ text: z.string().max(100) }),
      result: z.object({ text: z.string() }),
      resultKey: "shout",
      async run({ text }) {
        return { text: text.toUpperCase() };
      },
    });
    const ricochet = createRicochet({
      actions: [shout],
      config: { DATABASE_URL: db.url!, REDIS_URL, QUEUE_PREFIX: prefix, SECRETS_KEY: TEST_SECRETS_KEY, ADMIN_TOKEN: "embedded-admin-token-0123456789", LOG_LEVEL: "silent", SHUTDOWN_TIMEOUT: "2s" },
    });
    const port = await freePort();
    let stopped = false;
    try {
      expect(() => ricochet.app).toThrow(/call start\(\) first/);
      await ricochet.start({ port });
      const admin = { authorization: "Bearer embedded-admin-token-0123456789", "content-type": "application/json" };
      const client = (await (await ricochet.app.request("/admin/v1/tenants/default/clients", { method: "POST", headers: admin, body: JSON.stringify({ name: "embedded" }) })).json()) as { clientId: string; clientSecret: string };
      const token = (await (await ricochet.app.request("/oauth/token", { method: "POST", body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }) })).json()) as { access_token: string };
      const auth = { authorization: `Bearer ${token.access_token}` };
      const submitted = await ricochet.app.request("/api/v1/async", { ...jsonBody({ action: "shout", input: { text: "hi" } }), headers: { ...auth, "content-type": "application/json" } });
      expect(submitted.status).toBe(202);
      const { asyncRequest } = (await submitted.json()) as { asyncRequest: { id: string } };
      const done = (await (await ricochet.app.request(`/api/v1/async/${asyncRequest.id}?wait=10`, { headers: auth })).json()) as { asyncRequest: { status: string } };
      const final = done.asyncRequest.status === "COMPLETED" ? done : ((await (await ricochet.app.request(`/api/v1/async/${asyncRequest.id}?wait=10`, { headers: auth })).json()) as typeof done);
      expect(final.asyncRequest.status).toBe("COMPLETED");
      const result = (await (await ricochet.app.request(`/api/v1/async/${asyncRequest.id}/result`, { headers: auth })).json()) as { shout: unknown };
      expect(result.shout).toEqual({ text: "HI" });

      // stop() with an event stream open over HTTP (a request that will not finish soon): the
      // stream ends and stop() returns, as on SIGTERM.
      const slow = await ricochet.app.request("/api/v1/async", { ...jsonBody({ action: "echo", input: { delayMs: 60_000 } }), headers: { ...auth, "content-type": "application/json" } });
      const slowId = ((await slow.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
      const stream = await fetch(`http://127.0.0.1:${port}/api/v1/async/${slowId}/events`, { headers: auth });
      expect(stream.status).toBe(200);
      const streamed = stream.text();
      const stopping = performance.now();
      await ricochet.stop();
      stopped = true;
      expect(performance.now() - stopping).toBeLessThan(10_000);
      expect(await streamed).toContain("event: status");
    } finally {
      if (!stopped) await ricochet.stop();
      await db.drop();
      await deleteKeys(prefix);
    }
  });
});
