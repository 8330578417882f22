import { randomUUID } from "node:crypto";
import { Queue, QueueEvents } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answer, startReceiver, type Receiver } from "./helpers/receiver.js";
import { REDIS_URL } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, TEST_ADMIN_TOKEN, waitForCallback, waitForStatus, type AsyncRequestJson, type TestRuntime } from "./helpers/runtime.js";

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const BEARER = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const BASIC = { authorization: basic("operator", TEST_ADMIN_TOKEN) };

type QueueView = { name: string; paused: boolean; counts: Record<string, number> };

describe("queue dashboard and queue control", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "10ms", CALLBACK_TIMEOUT: "500ms" } });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  const admin = (path: string, init: RequestInit = {}, headers: Record<string, string> = BEARER) => rt.rawRequest(path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const queuesNow = async (headers: Record<string, string> = BEARER) => {
    const response = await admin("/admin/api/queues", {}, headers);
    expect(response.status).toBe(200);
    const { queues } = (await response.json()) as { queues: QueueView[] };
    return Object.fromEntries(queues.map((queue) => [queue.name, queue]));
  };
  const post = (path: string, headers: Record<string, string> = BEARER) => admin(path, { method: "POST" }, headers);
  /** A Queue of this runtime's prefix, as another process would open it. */
  const openQueue = (name: string) => new Queue(name, { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });

  describe("security", () => {
    const guarded = ["/admin/queues", "/admin/queues/queue/jobs", "/admin/queues/api/queues", "/admin/api/queues", "/admin/v1/queues"];

    it("answers 401 problem+json without credentials, with a Basic challenge a browser prompts for on the dashboard", async () => {
      for (const path of guarded) {
        const response = await rt.rawRequest(path);
        expect(response.status, path).toBe(401);
        expect(response.headers.get("content-type"), path).toBe("application/problem+json");
        expect(((await response.json()) as { code: string }).code, path).toBe("unauthorized");
      }
      // Chrome prompts only when Basic is the header's (first) challenge.
      expect((await rt.rawRequest("/admin/queues")).headers.get("www-authenticate")).toBe('Basic realm="ricochet admin", charset="UTF-8"');
      expect((await rt.rawRequest("/admin/queues/queue/callbacks")).headers.get("www-authenticate")).toMatch(/^Basic realm=/);
      // Scripts are told both schemes they may use.
      expect((await rt.rawRequest("/admin/api/queues")).headers.get("www-authenticate")).toBe('Bearer realm="ricochet-admin", Basic realm="ricochet admin", charset="UTF-8"');
    });

    it("refuses a wrong password, the token as the user name, a client's token, and a malformed Basic header", async () => {
      const refused = [
        basic("operator", `${TEST_ADMIN_TOKEN}x`),
        basic(TEST_ADMIN_TOKEN, ""),
        `Basic ${Buffer.from(TEST_ADMIN_TOKEN).toString("base64")}`, // no colon: no password at all
        `Basic ${TEST_ADMIN_TOKEN}:`,
        `Bearer ${rt.client.token}`,
        basic("operator", rt.client.token),
      ];
      for (const authorization of refused) {
        for (const path of ["/admin/queues", "/admin/api/queues"]) {
          expect((await rt.rawRequest(path, { headers: { authorization } })).status, `${authorization} ${path}`).toBe(401);
        }
      }
    });

    it("accepts the token as a bearer token and as the Basic password with any user name, on the dashboard and every admin route", async () => {
      for (const headers of [BEARER, BASIC, { authorization: basic("", TEST_ADMIN_TOKEN) }, { authorization: basic("ops", `${TEST_ADMIN_TOKEN}`) }]) {
        for (const path of guarded) expect((await rt.rawRequest(path, { headers })).status, `${headers.authorization} ${path}`).toBe(200);
      }
      expect((await rt.rawRequest("/admin/v1/tenants", { headers: BASIC })).status).toBe(200);
    });

    it("changes nothing for a request without credentials", async () => {
      expect((await post("/admin/api/queues/jobs/pause", {})).status).toBe(401);
      expect((await post("/admin/queues/api/queues/jobs/pause", {})).status).toBe(401);
      expect((await queuesNow()).jobs!.paused).toBe(false);
    });

    it("refuses a change sent with Basic credentials from another site (CSRF), and nothing changes", async () => {
      const crossSite: Record<string, string>[] = [{ "sec-fetch-site": "cross-site" }, { "sec-fetch-site": "same-site" }, { origin: "http://evil.example" }, { origin: "null" }];
      try {
        for (const headers of crossSite) {
          for (const path of ["/admin/api/queues/jobs/pause", "/admin/queues/api/queues/jobs/pause"]) {
            const method = path.startsWith("/admin/queues/") ? "PUT" : "POST"; // bull-board's own API uses PUT
            const response = await admin(path, { method }, { ...BASIC, ...headers });
            expect(response.status, `${JSON.stringify(headers)} ${method} ${path}`).toBe(403);
            expect(((await response.json()) as { code: string }).code).toBe("forbidden");
          }
          // Reads are not changes: the same headers may read.
          expect((await admin("/admin/api/queues", {}, { ...BASIC, ...headers })).status).toBe(200);
        }
        expect((await queuesNow()).jobs!.paused).toBe(false);
      } finally {
        await post("/admin/api/queues/jobs/resume"); // should this fail, the other tests still run
      }
    });

    it("takes a change with Basic from the same origin, and from scripts with a bearer token wherever they run", async () => {
      // in-process requests are addressed to http://localhost
      const allowed: Record<string, string>[] = [{ ...BASIC, "sec-fetch-site": "same-origin" }, { ...BASIC, origin: "http://localhost" }, BASIC, { ...BEARER, "sec-fetch-site": "cross-site" }];
      for (const headers of allowed) {
        try {
          const response = await post("/admin/api/queues/callbacks/pause", headers);
          expect(response.status, JSON.stringify(headers)).toBe(200);
          expect((await queuesNow()).callbacks!.paused).toBe(true);
        } finally {
          await post("/admin/api/queues/callbacks/resume");
        }
      }
    });

    it("is disabled (404) when ADMIN_TOKEN is unset, dashboard and assets included", async () => {
      const closed = await startTestRuntime({ roles: { api: true, worker: false }, db: rt.db, env: { ...rt.env, ADMIN_TOKEN: "" } });
      try {
        for (const path of [...guarded, "/admin/queues/static/favicon-32x32.png"]) {
          for (const headers of [BEARER, BASIC]) expect((await closed.rawRequest(path, { headers })).status, path).toBe(404);
        }
        expect((await closed.rawRequest("/admin/api/queues/jobs/pause", { method: "POST", headers: BEARER })).status).toBe(404);
      } finally {
        await closed.stop();
      }
    });
  });

  describe("errors", () => {
    it("answers 404 problem+json for a queue that does not exist", async () => {
      for (const action of ["pause", "resume", "retry-failed"]) {
        const response = await post(`/admin/api/queues/nope/${action}`);
        expect(response.status, action).toBe(404);
        expect(response.headers.get("content-type")).toBe("application/problem+json");
        expect(await response.json()).toMatchObject({ status: 404, code: "not_found", detail: "No queue named nope; the queues are jobs and callbacks" });
      }
    });

    it("answers 405 for a GET of an action", async () => {
      expect((await admin("/admin/api/queues/jobs/pause")).status).toBe(405);
    });
  });

  describe("counts and actions", () => {
    it("lists both queues with every state, the same counts as GET /admin/v1/queues", async () => {
      const queues = await queuesNow(BASIC);
      expect(Object.keys(queues).sort()).toEqual(["callbacks", "jobs"]);
      for (const queue of Object.values(queues)) {
        expect(Object.keys(queue.counts).sort()).toEqual(["active", "completed", "delayed", "failed", "paused", "prioritized", "waiting"]);
      }
      const v1 = (await (await admin("/admin/v1/queues")).json()) as Record<string, Record<string, number>>;
      expect(v1).toEqual({ jobs: queues.jobs!.counts, callbacks: queues.callbacks!.counts });
    });

    it("counts a delayed callback", async () => {
      const queue = openQueue("callbacks");
      try {
        const before = (await queuesNow()).callbacks!.counts.delayed!;
        // Another process's series, due in an hour (no such request: nothing runs before then).
        await queue.add("deliver", { requestId: randomUUID(), series: 1, offset: 0 }, { jobId: `${randomUUID()}.1`, delay: 3_600_000 });
        expect((await queuesNow()).callbacks!.counts.delayed).toBe(before + 1);
      } finally {
        await queue.close();
      }
    });

    it("counts a failed callback job, and retry-failed moves it back for a worker to take", async () => {
      receiver.on("/hooks/down", answer(500, "down"));
      const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/down") }));
      const { id } = ((await response.json()) as { asyncRequest: AsyncRequestJson }).asyncRequest;
      await waitForCallback(rt, rt, id, "EXHAUSTED");
      expect((await queuesNow()).callbacks!.counts.failed).toBe(1);

      const queue = openQueue("callbacks");
      const events = new QueueEvents("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
      try {
        await events.waitUntilReady();
        const job = (await queue.getJob(`${id}.1`))!;
        expect(await job.getState()).toBe("failed");

        const retried = await post("/admin/api/queues/callbacks/retry-failed", BASIC);
        expect(retried.status).toBe(200);
        const body = (await retried.json()) as QueueView & { retried: number };
        expect(body).toMatchObject({ name: "callbacks", paused: false, retried: 1 });
        expect(body.counts.failed).toBe(0);
        // The worker takes it again; its series is EXHAUSTED, so the job completes without an attempt.
        await job.waitUntilFinished(events, 10_000);
        expect(await (await queue.getJob(`${id}.1`))!.getState()).toBe("completed");
        expect(receiver.requestsTo("/hooks/down")).toHaveLength(2);
      } finally {
        await events.close();
        await queue.close();
      }
      const again = (await (await post("/admin/api/queues/callbacks/retry-failed")).json()) as { retried: number };
      expect(again.retried).toBe(0);
    });

    it("pause stops the worker from taking jobs, across processes; resume lets it", async () => {
      const paused = await post("/admin/api/queues/jobs/pause");
      try {
        expect(paused.status).toBe(200);
        expect(await paused.json()).toMatchObject({ name: "jobs", paused: true });
        expect((await queuesNow()).jobs!.paused).toBe(true);
        // Another process sees it: the pause is the queue's, in Redis.
        const queue = openQueue("jobs");
        expect(await queue.isPaused()).toBe(true);
        await queue.close();

        const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {} }));
        expect(response.status).toBe(202);
        const { id } = ((await response.json()) as { asyncRequest: AsyncRequestJson }).asyncRequest;
        // A long-poll answers at the first status change; an unpaused worker runs echo in milliseconds.
        const polled = (await (await rt.request(`/api/v1/async/${id}?wait=2`)).json()) as { asyncRequest: AsyncRequestJson };
        expect(polled.asyncRequest.status).toBe("QUEUED");
        const counts = (await queuesNow()).jobs!.counts;
        expect(counts.active).toBe(0);
        expect(counts.waiting! + counts.paused!).toBe(1);

        const resumed = await post("/admin/api/queues/jobs/resume", BASIC);
        expect(resumed.status).toBe(200);
        expect(await resumed.json()).toMatchObject({ name: "jobs", paused: false });
        expect((await waitForStatus(rt, id, "COMPLETED")).status).toBe("COMPLETED");
      } finally {
        await post("/admin/api/queues/jobs/resume");
      }
    });
  });

  describe("bull-board", () => {
    it("serves its page with a base under /admin/queues, its assets, and its API over both queues", async () => {
      const page = await admin("/admin/queues", {}, BASIC);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('<base href="/admin/queues/" />');
      expect(html).toContain("<title>Ricochet queues</title>");
      // No third-party request: the Google Fonts stylesheet is left out.
      expect(html).not.toMatch(/https?:\/\//);

      const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((match) => match[1]!);
      expect(assets.some((asset) => asset.endsWith(".js"))).toBe(true);
      expect(assets.some((asset) => asset.endsWith(".css"))).toBe(true);
      for (const asset of assets) {
        const response = await admin(`/admin/queues/${asset}`, {}, BASIC);
        expect(response.status, asset).toBe(200);
        expect(response.headers.get("content-type"), asset).toMatch(/^(text\/(javascript|css)|image\/(png|svg\+xml))/);
        expect((await response.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
      }

      const slash = await admin("/admin/queues/", {}, BASIC);
      expect(slash.status).toBe(301);
      expect(slash.headers.get("location")).toBe("/admin/queues");

      const api = await admin("/admin/queues/api/queues", {}, BASIC);
      expect(api.status).toBe(200);
      const { queues } = (await api.json()) as { queues: { name: string; description: string }[] };
      expect(queues.map((queue) => queue.name).sort()).toEqual(["callbacks", "jobs"]);
      expect(queues.find((queue) => queue.name === "jobs")!.description).toBe(`Redis keys ${rt.config.queuePrefix}:jobs:*`);
    });
  });
});
