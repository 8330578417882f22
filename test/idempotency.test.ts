import { count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asyncRequests } from "../src/db/schema.js";
import { manualClock } from "./helpers/clock.js";
import { startTestRuntime, type TestClient, type TestRuntime } from "./helpers/runtime.js";

describe("Idempotency-Key on submit", () => {
  const clock = manualClock();
  let rt: TestRuntime;
  let client: TestClient;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, clock, env: { TOKEN_TTL: "0" } });
    client = await rt.createClient();
  });
  afterAll(() => rt.stop());

  const submitWithKey = (key: string, body: unknown, as = client) =>
    as.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json", "idempotency-key": key }, body: JSON.stringify(body) });
  const rows = async (tenantId = client.tenantId) =>
    (await rt.db.db.select({ n: count() }).from(asyncRequests).where(eq(asyncRequests.tenantId, tenantId)))[0]!.n;

  it("replays the original status and body for the same key and body, creating nothing", async () => {
    const body = { action: "echo", input: { data: { n: 1, m: 2 } }, metadata: { order: "A" } };
    const first = await submitWithKey("order-A-1", body);
    expect(first.status).toBe(202);
    const firstBody = await first.json();
    // The same body with its keys in another order is the same request.
    const again = await submitWithKey("order-A-1", { metadata: { order: "A" }, input: { data: { m: 2, n: 1 } }, action: "echo" });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(await again.json()).toEqual(firstBody);
    expect(await rows()).toBe(1);
  });

  it("refuses the same key with a different body", async () => {
    await submitWithKey("order-B", { action: "echo", input: { data: 1 } });
    const conflict = await submitWithKey("order-B", { action: "echo", input: { data: 2 } });
    expect(conflict.status).toBe(422);
    const problem = (await conflict.json()) as { code: string; detail: string };
    expect(problem.code).toBe("idempotency_key_reused");
    expect(problem.detail).toMatch(/different request body/);
  });

  it("refuses a key that breaks its rule with a 422 naming the header, ahead of the body, writing nothing", async () => {
    const before = await rows();
    for (const key of ["has space", "k".repeat(256)]) {
      // The body is invalid too: the header is checked first, as documented.
      const response = await submitWithKey(key, { action: "no-such-action" });
      expect(response.status).toBe(422);
      expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      const problem = (await response.json()) as { code: string; detail: string; errors: { path: string }[] };
      expect(problem.code).toBe("invalid");
      expect(problem.detail).toBe("Invalid header");
      expect(problem.errors.map((error) => error.path)).toEqual(["idempotency-key"]);
    }
    expect(await rows()).toBe(before);
  });

  it("keys belong to a client: another client's same key is a new request", async () => {
    const other = await rt.createClient({ tenantId: client.tenantId });
    const before = await rows();
    const response = await submitWithKey("order-A-1", { action: "echo", input: {} }, other);
    expect(response.status).toBe(202);
    expect(response.headers.get("idempotent-replayed")).toBeNull();
    expect(await rows()).toBe(before + 1);
  });

  it("concurrent retries with one key create one request", async () => {
    const before = await rows();
    const responses = await Promise.all(Array.from({ length: 6 }, () => submitWithKey("burst", { action: "echo", input: { data: "burst" } })));
    const ids = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { asyncRequest: { id: string } }).asyncRequest.id)));
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(202));
    expect(ids.size).toBe(1);
    expect(await rows()).toBe(before + 1);
  });

  it("a key is remembered for 24 hours", async () => {
    const first = (await (await submitWithKey("daily", { action: "echo", input: {} })).json()) as { asyncRequest: { id: string } };
    clock.advance(24 * 3_600_000 - 1);
    const within = (await (await submitWithKey("daily", { action: "echo", input: {} })).json()) as { asyncRequest: { id: string } };
    expect(within.asyncRequest.id).toBe(first.asyncRequest.id);
    clock.advance(2);
    const after = (await (await submitWithKey("daily", { action: "echo", input: { data: "new body is fine now" } })).json()) as { asyncRequest: { id: string } };
    expect(after.asyncRequest.id).not.toBe(first.asyncRequest.id);
  });
});
