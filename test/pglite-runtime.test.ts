import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { jsonBody, startTestRuntime, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

// The zero-config mode runs on embedded PGlite: the same data access, end to end, on that driver.
describe("the whole service on PGlite", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    rt = await startTestRuntime({ dbKind: "pglite", env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "10ms", DEFAULT_MAX_QUEUED: "50" } });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  it("authenticates, runs, calls back, lists, replays idempotent submits, limits and cancels", async () => {
    expect(rt.db.kind).toBe("pglite");
    const client = await rt.createClient();
    const submitted = await client.request("/api/v1/async", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k-1" },
      body: JSON.stringify({ action: "analyse", input: { texts: ["One. Two. One."] }, callbackUrl: receiver.url("/pglite") }),
    });
    expect(submitted.status).toBe(202);
    const first = (await submitted.json()) as { asyncRequest: { id: string } };
    const replay = await client.request("/api/v1/async", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k-1" },
      body: JSON.stringify({ action: "analyse", input: { texts: ["One. Two. One."] }, callbackUrl: receiver.url("/pglite") }),
    });
    expect(await replay.json()).toEqual(first);
    const id = first.asyncRequest.id;

    await waitForStatus(client, id, "COMPLETED");
    const delivered = await waitForCallback(rt, client, id, "DELIVERED");
    expect(delivered.callback.attempts).toBe(1);
    const [delivery] = receiver.requestsTo("/pglite");
    expect(JSON.parse(delivery!.body)).toMatchObject({ analysis: { totals: { segments: 3, repeatedSegments: 1 } } });
    const attempts = (await (await client.request(`/api/v1/async/${id}/callback/attempts`)).json()) as { attempts: unknown[] };
    expect(attempts.attempts).toHaveLength(1);

    const slow = await client.request("/api/v1/async", jsonBody({ action: "echo", input: { delayMs: 60_000 } }));
    const slowId = ((await slow.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    await waitForStatus(client, slowId, "RUNNING");
    const limits = (await (await client.request("/api/v1/async/limits")).json()) as { concurrentRequests: { count: number }; queued: { limit: number } };
    expect(limits).toMatchObject({ concurrentRequests: { count: 1 }, queued: { limit: 50 } });
    expect((await client.request(`/api/v1/async/${slowId}`, { method: "DELETE" })).status).toBe(200);
    await waitForStatus(client, slowId, "CANCELLED");

    const list = (await (await client.request("/api/v1/async?status=COMPLETED,CANCELLED")).json()) as { asyncRequests: { id: string }[] };
    expect(list.asyncRequests.map((r) => r.id)).toEqual([slowId, id]);
    const stranger = await rt.createClient();
    expect((await stranger.request(`/api/v1/async/${id}`)).status).toBe(404);
  });
});
