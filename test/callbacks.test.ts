import { Queue } from "bullmq";
import { Webhook } from "standardwebhooks";
import { REDIS_URL } from "./helpers/redis.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answer, startReceiver, type Receiver } from "./helpers/receiver.js";
import { jsonBody, startTestRuntime, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

type Attempt = { series: number; attempt: number; webhookId: string; statusCode: number | null; errorClass: string | null; errorMessage: string | null; responseBody: string | null; delivered: boolean; durationMs: number };

describe("callback delivery", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    rt = await startTestRuntime({
      env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "20ms,40ms,60ms,80ms,100ms,100ms,100ms,100ms,100ms,100ms", CALLBACK_TIMEOUT: "500ms" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  const submitWithCallback = async (path: string, input: unknown = { data: { n: 1 } }, action = "echo") => {
    const response = await rt.request("/api/v1/async", jsonBody({ action, input, callbackUrl: receiver.url(path) }));
    expect(response.status).toBe(202);
    return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
  };
  const attemptsOf = async (id: string) => ((await (await rt.request(`/api/v1/async/${id}/callback/attempts`)).json()) as { attempts: Attempt[] }).attempts;

  it("POSTs the signed result once COMPLETED: the body is what GET shows, plus the result", async () => {
    const id = await submitWithCallback("/hooks/ok", { data: { order: "A-17" } });
    const [delivery] = await receiver.waitFor("/hooks/ok", 1);
    const done = await waitForCallback(rt, rt, id, "DELIVERED");
    expect(done.callback).toMatchObject({ status: "DELIVERED", attempts: 1, lastStatusCode: 200, lastError: null, nextAttemptAt: null });

    expect(delivery!.headers["content-type"]).toBe("application/json");
    expect(delivery!.headers["user-agent"]).toMatch(/^Ricochet\/\d+\.\d+\.\d+$/);
    const body = JSON.parse(delivery!.body) as { asyncRequest: Record<string, unknown>; echo: unknown };
    expect(body.echo).toEqual({ data: { order: "A-17" } });
    const { callback: sentCallback, ...sent } = body.asyncRequest;
    const { callback: _now, ...shown } = done as unknown as Record<string, unknown>;
    expect(sent).toEqual(shown);
    expect(sentCallback).toMatchObject({ status: "PENDING", attempts: 0 });

    // Verifies with the public standardwebhooks package and the client's secret.
    const verified = new Webhook(rt.client.webhookSecret).verify(delivery!.body, delivery!.headers as Record<string, string>);
    expect(verified).toEqual(body);
    expect(delivery!.headers["webhook-id"]).toBe(`msg_${id.replaceAll("-", "")}_1`);

    const attempts = await attemptsOf(id);
    expect(attempts).toEqual([expect.objectContaining({ series: 1, attempt: 1, statusCode: 200, delivered: true, errorClass: null, responseBody: "ok" })]);
  });

  it("signs with both secrets during a rotation's overlap, and only the new one after", async () => {
    const client = await rt.createClient();
    const rotated = await rt.services.admin.rotateWebhookSecret(client.clientId, 3_600_000);
    const response = await client.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/rotating") }));
    const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
    const [delivery] = await receiver.waitFor("/hooks/rotating", 1);
    expect(String(delivery!.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const secret of [client.webhookSecret, rotated.webhookSecret]) {
      expect(() => new Webhook(secret).verify(delivery!.body, delivery!.headers as Record<string, string>)).not.toThrow();
    }
    await waitForCallback(rt, client, id, "DELIVERED");

    await rt.services.admin.rotateWebhookSecret(client.clientId, 0);
    const latest = (await rt.services.admin.signingSecrets(client.clientId))[0]!;
    const again = await client.request(`/api/v1/async/${id}/callback/redeliver`, { method: "POST" });
    expect(again.status).toBe(202);
    const [, second] = await receiver.waitFor("/hooks/rotating", 2);
    expect(String(second!.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    expect(() => new Webhook(latest).verify(second!.body, second!.headers as Record<string, string>)).not.toThrow();
    expect(() => new Webhook(client.webhookSecret).verify(second!.body, second!.headers as Record<string, string>)).toThrow();
    await waitForCallback(rt, client, id, "DELIVERED");
  });

  it("sends FAILED and CANCELLED requests too, with a null result", async () => {
    const failed = await submitWithCallback("/hooks/failed", { fail: { code: "NOPE", message: "no" } });
    const [delivery] = await receiver.waitFor("/hooks/failed", 1);
    const body = JSON.parse(delivery!.body) as { asyncRequest: { status: string; asyncResponse: { errorCode: string } }; echo: unknown };
    expect(body).toMatchObject({ asyncRequest: { status: "FAILED", asyncResponse: { errorCode: "NOPE" } }, echo: null });
    await waitForCallback(rt, rt, failed, "DELIVERED");

    const cancelled = await submitWithCallback("/hooks/cancelled", { delayMs: 60_000 });
    await waitForStatus(rt, cancelled, "RUNNING");
    await rt.request(`/api/v1/async/${cancelled}`, { method: "DELETE" });
    const [cancelDelivery] = await receiver.waitFor("/hooks/cancelled", 1);
    expect(JSON.parse(cancelDelivery!.body)).toMatchObject({ asyncRequest: { status: "CANCELLED" }, echo: null });
    await waitForCallback(rt, rt, cancelled, "DELIVERED");
    expect(receiver.requestsTo("/hooks/cancelled")).toHaveLength(1);
  });

  it("stops at the attempt that answers 200", async () => {
    receiver.on("/hooks/third-time", (_req, res, count) => res.writeHead(count < 3 ? 503 : 200).end(count < 3 ? "busy" : "thanks"));
    const id = await submitWithCallback("/hooks/third-time");
    const done = await waitForCallback(rt, rt, id, "DELIVERED");
    expect(done.callback.attempts).toBe(3);
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => [a.attempt, a.statusCode, a.delivered])).toEqual([
      [1, 503, false],
      [2, 503, false],
      [3, 200, true],
    ]);
    expect(attempts[0]).toMatchObject({ errorClass: "http_status", responseBody: "busy" });
    // Every attempt of the series carries the same webhook-id, and a fresh timestamp.
    const deliveries = receiver.requestsTo("/hooks/third-time");
    expect(new Set(deliveries.map((d) => d.headers["webhook-id"])).size).toBe(1);
    // The series' job is finished: no further attempt is scheduled.
    const queue = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    expect(await (await queue.getJob(`${id}.1`))?.getState()).toBe("completed");
    await queue.close();
    expect(receiver.requestsTo("/hooks/third-time")).toHaveLength(3);
  });

  it("makes exactly 11 attempts against a receiver that always fails, spaced by the schedule, then EXHAUSTED", async () => {
    receiver.on("/hooks/down", answer(500, "down"));
    const id = await submitWithCallback("/hooks/down");
    const exhausted = await waitForCallback(rt, rt, id, "EXHAUSTED");
    expect(exhausted.callback).toMatchObject({ status: "EXHAUSTED", attempts: 11, lastStatusCode: 500, nextAttemptAt: null });
    expect(exhausted.callback.lastError).toMatch(/^http_status: the receiver answered 500/);
    const deliveries = receiver.requestsTo("/hooks/down");
    expect(deliveries).toHaveLength(11);
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // The gap before attempt n+1 is at least the n-th delay after attempt n ended.
    const delays = [20, 40, 60, 80, 100, 100, 100, 100, 100, 100];
    for (let n = 0; n < 10; n++) {
      const gap = deliveries[n + 1]!.at - deliveries[n]!.at;
      expect(gap).toBeGreaterThanOrEqual(delays[n]! - 2); // 2 ms: timer granularity
    }
    expect(rt.logs.text).toContain("callback EXHAUSTED");
    // The series' job ends failed, so operators' queue counts show the failure.
    const queue = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    try {
      expect(await (await queue.getJob(`${id}.1`))?.getState()).toBe("failed");
    } finally {
      await queue.close();
    }
    expect((await rt.services.admin.queueStats()).callbacks.failed).toBeGreaterThanOrEqual(1);
    const metrics = await (await rt.rawRequest("/metrics")).text();
    expect(metrics).toMatch(/ricochet_callbacks_exhausted_total \d+/);
    expect(metrics).toMatch(/ricochet_callback_attempts_total\{outcome="5xx"\} \d+/);
  });
});
