import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/client.js";
import { ADMIN_DATABASE_URL, createTestDatabase } from "./helpers/db.js";
import { startTcpProxy } from "./helpers/tcp-proxy.js";
import { jsonBody, startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

type ProblemJson = { type: string; title: string; status: number; detail: string; instance: string; code: string; requestId: string; errors?: { path: string; message: string }[] };

async function expectProblem(response: Response, status: number, code: string): Promise<ProblemJson> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = (await response.json()) as ProblemJson;
  expect(body).toMatchObject({ status, code });
  expect(body.type).toMatch(/^https:\/\//);
  expect(body.title).toBeTruthy();
  expect(body.detail).toBeTruthy();
  expect(body.requestId).toBe(response.headers.get("x-request-id"));
  return body;
}

describe("API errors are RFC 9457 problem+json", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { BODY_LIMIT: "2kb" } });
  });
  afterAll(() => rt.stop());

  const count = async () => {
    const body = (await (await rt.request("/api/v1/async?limit=1000")).json()) as { asyncRequests: unknown[] };
    return body.asyncRequests.length;
  };

  it("400 for malformed JSON, and nothing is written", async () => {
    const before = await count();
    const response = await rt.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json" }, body: '{"action": "echo",' });
    await expectProblem(response, 400, "malformed_json");
    expect(await count()).toBe(before);
  });

  it("413 for a body over the limit", async () => {
    const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: { data: "x".repeat(4096) } }));
    await expectProblem(response, 413, "payload_too_large");
  });

  it("415 for a body that is not JSON", async () => {
    const response = await rt.request("/api/v1/async", { method: "POST", headers: { "content-type": "text/plain" }, body: "action=echo" });
    await expectProblem(response, 415, "unsupported_media_type");
    const form = await rt.request("/api/v1/async", { method: "POST", body: new URLSearchParams({ action: "echo" }) });
    await expectProblem(form, 415, "unsupported_media_type");
  });

  it("422 with field errors for an unknown action, bad input, unknown keys and bad metadata", async () => {
    const before = await count();
    const unknown = await expectProblem(await rt.request("/api/v1/async", jsonBody({ action: "nope", input: {} })), 422, "invalid");
    expect(unknown.errors).toEqual([{ path: "action", message: expect.stringContaining("analyse") }]);

    const badInput = await expectProblem(
      await rt.request("/api/v1/async", jsonBody({ action: "analyse", input: { texts: [], extra: 1 } })),
      422,
      "invalid",
    );
    expect(badInput.errors?.map((e) => e.path).sort()).toEqual(["input", "input.texts"]);

    const missing = await expectProblem(await rt.request("/api/v1/async", jsonBody({ input: {} })), 422, "invalid");
    expect(missing.errors?.[0]?.path).toBe("action");

    const extraKey = await expectProblem(await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, colour: "red" })), 422, "invalid");
    expect(extraKey.errors?.[0]?.message).toMatch(/colour/);

    const notObject = await expectProblem(await rt.request("/api/v1/async", jsonBody([1, 2])), 422, "invalid");
    expect(notObject.errors?.length).toBeGreaterThan(0);

    const metadata = await expectProblem(await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, metadata: "x" })), 422, "invalid");
    expect(metadata.errors?.[0]?.path).toBe("metadata");
    expect(await count()).toBe(before);
  });

  it("422 for bad list parameters", async () => {
    for (const query of ["status=DONE", "callbackStatus=LOST", "limit=0", "limit=1001", "limit=abc", "from=yesterday", "from=2026-13-01", "to=2026-11-29T25:00", "cursor=bogus", "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"]) {
      await expectProblem(await rt.request(`/api/v1/async?${query}`), 422, "invalid");
    }
    await expectProblem(await rt.request(`/api/v1/async/${crypto.randomUUID()}?wait=31`), 422, "invalid");
    await expectProblem(await rt.request(`/api/v1/async/${crypto.randomUUID()}?wait=-1`), 422, "invalid");
  });

  it("404 for an unknown route and for an unknown or malformed id", async () => {
    await expectProblem(await rt.request("/api/v1/nothing-here"), 404, "not_found");
    const id = crypto.randomUUID();
    for (const path of [`/api/v1/async/${id}`, `/api/v1/async/${id}/result`, "/api/v1/async/not-a-uuid", "/api/v1/async/%27%3B--"]) {
      await expectProblem(await rt.request(path), 404, "not_found");
    }
    await expectProblem(await rt.request(`/api/v1/async/${id}`, { method: "DELETE" }), 404, "not_found");
  });

  it("405 with Allow for a known path and the wrong method", async () => {
    const response = await rt.request("/api/v1/async", { method: "PUT" });
    await expectProblem(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toContain("POST");
    const actions = await rt.request("/api/v1/actions", { method: "DELETE" });
    await expectProblem(actions, 405, "method_not_allowed");
  });

  it("echoes a caller's X-Request-Id and makes one otherwise", async () => {
    const mine = await rt.request("/healthz", { headers: { "x-request-id": "trace-abc-123" } });
    expect(mine.headers.get("x-request-id")).toBe("trace-abc-123");
    const generated = await rt.request("/api/v1/actions");
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // Trace ids with dots, colons and AWS's Root=…;Parent=… are kept as they are.
    for (const traceId of ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "svc.api:7f3a.11", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"]) {
      const kept = await rt.request("/healthz", { headers: { "x-request-id": traceId } });
      expect(kept.headers.get("x-request-id")).toBe(traceId);
    }
    // What could break a header or a log line is replaced.
    const replaced = await rt.request("/healthz", { headers: { "x-request-id": 'has "quotes" and spaces' } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("lists the actions with their input JSON Schema", async () => {
    const body = (await (await rt.request("/api/v1/actions")).json()) as { actions: { name: string; resultKey: string; inputSchema: { type: string; properties: object } }[] };
    expect(body.actions.map((a) => a.name).sort()).toEqual(["analyse", "echo"]);
    const analyse = body.actions.find((a) => a.name === "analyse")!;
    expect(analyse.resultKey).toBe("analysis");
    expect(analyse.inputSchema.type).toBe("object");
    expect(Object.keys(analyse.inputSchema.properties)).toContain("texts");
  });

  it("serves the OpenAPI document generated from the routes, and the docs UI", async () => {
    const doc = (await (await rt.request("/openapi.json")).json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.paths["/api/v1/async/{id}"]?.get?.operationId).toBe("getAsyncRequest");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/v1/async", "/api/v1/async/{id}/result", "/api/v1/actions"]));
    const docs = await rt.request("/docs");
    expect(docs.status).toBe(200);
    const page = await docs.text();
    expect(page).toContain("/openapi.json");
    // Its assets come from this server, not a CDN: the docs work offline.
    expect(page).not.toMatch(/https?:\/\//);
    for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
      expect(page).toContain(`/docs/assets/swagger-ui-dist/${asset}`);
      const response = await rt.rawRequest(`/docs/assets/swagger-ui-dist/${asset}`);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    expect((await rt.rawRequest("/docs/assets/swagger-ui-dist/package.json")).status).toBe(404);
    expect((await rt.rawRequest("/docs/assets/swagger-ui-dist/..%2F..%2Fpackage.json")).status).toBe(404);
  });
});

describe("a failure on our side", () => {
  it("answers a bare 500 problem with no stack trace, and logs it with the request id", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false } });
    await rt.db.close(); // the database goes away under the API
    const response = await rt.request(`/api/v1/async/${crypto.randomUUID()}`);
    const body = await expectProblem(response, 500, "internal");
    const text = JSON.stringify(body);
    expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
    expect(text).not.toMatch(/pool|Error:/i);
    expect(rt.logs.text).toContain(body.requestId);
    await rt.stop();
  });
});

describe("a dependency that is down", () => {
  it("answers 503 with Retry-After while the database is unreachable, and recovers", async () => {
    const base = await createTestDatabase("postgres");
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(ADMIN_DATABASE_URL).port || 5432) });
    const proxiedUrl = new URL(base.url!);
    proxiedUrl.port = String(proxy.port);
    const proxied = await openDatabase({ databaseUrl: proxiedUrl.toString(), dataDir: "unused", poolSize: 2 });
    const rt = await startTestRuntime({
      roles: { api: true, worker: false },
      db: { ...proxied, url: proxiedUrl.toString(), drop: () => proxied.close() },
    });
    try {
      expect((await rt.request(`/api/v1/async/${crypto.randomUUID()}`)).status).toBe(404);
      await proxy.cut();
      const response = await rt.request(`/api/v1/async/${crypto.randomUUID()}`);
      const body = await expectProblem(response, 503, "unavailable");
      expect(response.headers.get("retry-after")).toBe("5");
      expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/);
      expect((await rt.rawRequest("/readyz")).status).toBe(503);
      await proxy.restore();
      expect((await rt.request(`/api/v1/async/${crypto.randomUUID()}`)).status).toBe(404);
      expect((await rt.rawRequest("/readyz")).status).toBe(200);
    } finally {
      await rt.stop();
      await proxied.close().catch(() => {});
      await proxy.close();
      await base.drop();
    }
  });
});
