import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lifecycleStatements } from "../src/db/lifecycle.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { Queue } from "bullmq";
import { openDatabase } from "../src/db/client.js";
import { REDIS_URL } from "./helpers/redis.js";
import { startTcpProxy } from "./helpers/tcp-proxy.js";
import { jsonBody, startTestRuntime, submit, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("slow, hanging and huge receivers", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.on("/hang", () => {}); // accepts, never answers
    receiver.on("/drip", (_req, res) => {
      // Answers 200 but sends its body one byte at a time, forever.
      res.writeHead(200, { "content-type": "text/plain" });
      const timer = setInterval(() => res.write("."), 100);
      res.on("close", () => clearInterval(timer));
    });
    receiver.on("/huge", (_req, res) => {
      // 200 with a 100 MiB body, written as fast as the client reads it.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let left = 1600;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("error", () => {});
      pump();
    });
    rt = await startTestRuntime({
      env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "1h", CALLBACK_TIMEOUT: "5s", CALLBACK_CONCURRENCY: "20" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  const submit = async (path: string) => {
    const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url(path) }));
    return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
  };
  const callbackOf = async (id: string) =>
    ((await (await rt.request(`/api/v1/async/${id}`)).json()) as { asyncRequest: { callback: { status: string } } }).asyncRequest.callback;

  it("do not stall other deliveries, and end as timeouts", async () => {
    const stuck = [];
    for (let i = 0; i < 6; i++) stuck.push(await submit(i % 2 ? "/hang" : "/drip"));
    await receiver.waitFor("/hang", 3);
    await receiver.waitFor("/drip", 3);
    // Six attempts are hanging; a healthy receiver is still served at once.
    const fast = [await submit("/fast-1"), await submit("/fast-2")];
    for (const id of fast) await waitForCallback(rt, rt, id, "DELIVERED");
    for (const id of stuck) expect((await callbackOf(id)).status).toBe("PENDING"); // still on the wire

    for (const id of stuck) {
      const done = await waitForCallback(rt, rt, id, "RETRYING");
      expect(done.callback.lastError).toMatch(/^timeout: /);
    }
  });

  it("read at most 16 KiB of a huge answer, without growing memory", async () => {
    const before = process.memoryUsage().heapUsed;
    const ids = [await submit("/huge"), await submit("/huge"), await submit("/huge")];
    for (const id of ids) await waitForCallback(rt, rt, id, "DELIVERED");
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(40 * 1024 * 1024); // 300 MiB were on offer
    const attempts = ((await (await rt.request(`/api/v1/async/${ids[0]}/callback/attempts`)).json()) as { attempts: { responseBody: string }[] }).attempts;
    expect(attempts[0]!.responseBody).toHaveLength(16 * 1024);
  });
});

describe("the sweeper and callbacks", () => {
  it("delivers a finished request's callback that was never enqueued (a crash between finishing and enqueueing)", async () => {
    const receiver = await startReceiver();
    const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", SWEEPER_INTERVAL: "200ms", SWEEPER_GRACE: "0ms", CALLBACK_TIMEOUT: "500ms" } });
    try {
      const statements = lifecycleStatements(rt.db.sql);
      const row = { id: randomUUID() };
      await statements.insertWithinLimits(
        statements.sql,
        [{ id: row.id, tenantId: "default", createdBy: rt.client.clientId, action: "echo", input: {}, metadata: null, callbackUrl: receiver.url("/swept"), createdAt: new Date() }],
        10,
      );
      await statements.claim(row.id, 10, new Date());
      // The worker's final write, but no enqueue after it (nor before: no job was ever added).
      const finished = await statements.finish(row.id, "COMPLETED", new Date(), { result: { data: "swept" } });
      expect(finished?.callbackStatus).toBe("PENDING");
      const [delivery] = await receiver.waitFor("/swept", 1);
      expect(JSON.parse(delivery!.body)).toMatchObject({ asyncRequest: { id: row.id, status: "COMPLETED" }, echo: { data: "swept" } });
      await waitForCallback(rt, rt, row.id, "DELIVERED");
      expect(rt.logs.text).toContain("sweeper enqueued a callback with no live job");
      expect(receiver.requestsTo("/swept")).toHaveLength(1);
    } finally {
      await rt.stop();
      await receiver.close();
    }
  });
});

describe("a first attempt in flight in process", () => {
  // With a grace, the lease is taken only half-way through it: the sweeper must still leave the
  // series alone, from the moment it may first look at it.
  it.each(["0ms", "300ms"])("holds a lease: the sweeper leaves it alone, however long the receiver takes (no duplicate; SWEEPER_GRACE %s)", async (grace) => {
    const receiver = await startReceiver();
    const rt = await startTestRuntime({
      env: { OUTBOUND_ALLOW: "127.0.0.1/32", SWEEPER_INTERVAL: "100ms", SWEEPER_GRACE: grace, JOB_LOCK_DURATION: "400ms", CALLBACK_TIMEOUT: "5s" },
    });
    try {
      // Longer than the lock, than the grace and than several sweeps: only the renewed lease protects it.
      receiver.on("/slow", (_req, res) => void setTimeout(() => res.writeHead(200).end("late"), 1_500));
      const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/slow") }));
      const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
      await waitForCallback(rt, rt, id, "DELIVERED");
      expect(receiver.requestsTo("/slow")).toHaveLength(1);
      expect(rt.logs.text).not.toContain("sweeper enqueued a callback");
    } finally {
      await rt.stop();
      await receiver.close();
    }
  });
});

describe("a database outage", () => {
  it("costs a job none of its attempts: it waits and runs once the database is back", async () => {
    const api = await startTestRuntime({ roles: { api: true, worker: false } });
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(api.db.url!).port || 5432) });
    const proxiedUrl = new URL(api.db.url!);
    proxiedUrl.port = String(proxy.port);
    const proxied = await openDatabase({ databaseUrl: proxiedUrl.toString(), dataDir: "unused", poolSize: 2 });
    const worker = await startTestRuntime({
      roles: { api: false, worker: true },
      db: { ...proxied, url: proxiedUrl.toString(), drop: () => proxied.close() },
      env: { ...api.env },
    });
    await proxy.cut(); // the worker's database is away from here on; the API's is not
    try {
      const { id } = await submit(api, { action: "echo", input: { data: "patient" } });
      // Attempts would be spent within seconds (8, from 1 s apart): wait for more retries than that.
      const tries = () => worker.logs.lines.filter((line) => line.includes("database unavailable: the job waits")).length;
      await new Promise<void>((resolve) => {
        const check = setInterval(() => tries() >= 9 && (clearInterval(check), resolve()), 50);
      });
      const queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: api.config.queuePrefix });
      try {
        expect((await queue.getJob(id))?.attemptsMade).toBe(0);
      } finally {
        await queue.close();
      }
      await proxy.restore();
      const done = await waitForStatus(api, id, "COMPLETED");
      expect(done.asyncResponse?.errorCode).toBeNull();
    } finally {
      await worker.stop();
      await proxy.close();
      await api.stop();
    }
  });
});
