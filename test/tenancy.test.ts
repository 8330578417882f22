import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonBody, startTestRuntime, type TestClient, type TestRuntime } from "./helpers/runtime.js";

describe("tenant isolation", () => {
  let rt: TestRuntime;
  let acme: TestClient;
  let globex: TestClient;
  let acmeRequestId: string;
  beforeAll(async () => {
    rt = await startTestRuntime();
    acme = await rt.createClient();
    globex = await rt.createClient();
    const response = await acme.request("/api/v1/async", jsonBody({ action: "echo", input: { data: "acme's secret" } }));
    acmeRequestId = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    await acme.request(`/api/v1/async/${acmeRequestId}?wait=10`);
  });
  afterAll(() => rt.stop());

  it("another tenant's request id is 404 on every route, exactly like an id that does not exist", async () => {
    const missing = crypto.randomUUID();
    for (const [method, path] of [
      ["GET", "/api/v1/async/{id}"],
      ["GET", "/api/v1/async/{id}?wait=1"],
      ["GET", "/api/v1/async/{id}/result"],
      ["DELETE", "/api/v1/async/{id}"],
      ["GET", "/api/v1/async/{id}/events"],
      ["GET", "/api/v1/async/{id}/callback/attempts"],
      ["POST", "/api/v1/async/{id}/callback/redeliver"],
    ] as const) {
      const theirs = await globex.request(path.replace("{id}", acmeRequestId), { method });
      const nobody = await globex.request(path.replace("{id}", missing), { method });
      expect(theirs.status, `${method} ${path}`).toBe(404);
      const body = (await theirs.json()) as { detail: string; code: string };
      const other = (await nobody.json()) as { detail: string; code: string };
      expect(body.code).toBe(other.code);
      expect(body.detail.replace(acmeRequestId, "ID")).toBe(other.detail.replace(missing, "ID"));
    }
    // The owner still sees it, untouched by the attempted cancel.
    const own = await acme.request(`/api/v1/async/${acmeRequestId}`);
    expect(((await own.json()) as { asyncRequest: { status: string } }).asyncRequest.status).toBe("COMPLETED");
  });

  it("lists and limits never show another tenant's rows", async () => {
    const list = (await (await globex.request("/api/v1/async?limit=1000")).json()) as { asyncRequests: unknown[] };
    expect(list.asyncRequests).toEqual([]);
    const filtered = (await (await globex.request("/api/v1/async?status=COMPLETED&action=echo")).json()) as { asyncRequests: unknown[] };
    expect(filtered.asyncRequests).toEqual([]);
    const own = (await (await acme.request("/api/v1/async")).json()) as { asyncRequests: { id: string }[] };
    expect(own.asyncRequests.map((r) => r.id)).toEqual([acmeRequestId]);
    const slow = await globex.request("/api/v1/async", jsonBody({ action: "echo", input: { delayMs: 60_000 } }));
    const slowId = ((await slow.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    const theirLimits = (await (await globex.request("/api/v1/async/limits")).json()) as { concurrentRequests: { count: number }; queued: { count: number } };
    expect(theirLimits.concurrentRequests.count + theirLimits.queued.count).toBe(1);
    const limits = (await (await acme.request("/api/v1/async/limits")).json()) as { concurrentRequests: { count: number }; queued: { count: number } };
    expect(limits.concurrentRequests.count + limits.queued.count).toBe(0);
    await globex.request(`/api/v1/async/${slowId}`, { method: "DELETE" });
  });

  it("clients of the same tenant share its requests", async () => {
    const colleague = await rt.createClient({ tenantId: acme.tenantId });
    expect((await colleague.request(`/api/v1/async/${acmeRequestId}`)).status).toBe(200);
  });
});
