import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

/** Strings PostgreSQL cannot store and documents deep enough to overflow a stack: 422, never 500. */
describe("hostile input on submit and token endpoints", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  const post = (raw: string) => rt.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json" }, body: raw });
  const rows = async () => (await rt.db.sql.query<{ n: number }>("select count(*)::int as n from async_requests"))[0]!.n;
  const deep = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`;

  it.each([
    ["NUL in an input string", String.raw`{"action":"echo","input":{"data":{"note":"a\u0000b"}}}`, "input.data.note", /U\+0000/],
    ["NUL in a metadata value", String.raw`{"action":"echo","input":{},"metadata":{"k":"\u0000"}}`, "metadata.k", /U\+0000/],
    ["NUL in a key", String.raw`{"action":"echo","input":{"data":{"a\u0000":1}}}`, "input.data", /key/],
    ["a lone surrogate", String.raw`{"action":"echo","input":{"data":"\ud800"}}`, "input.data", /surrogate/],
    ["a reversed surrogate pair", String.raw`{"action":"echo","input":{"data":["ok","\udc00\ud800"]}}`, "input.data.1", /surrogate/],
    ["input nested 5,000 levels", `{"action":"echo","input":{"data":${deep(5000)}}}`, "input.data", /deeper than 64/],
    ["metadata nested 100,000 levels", `{"action":"echo","input":{},"metadata":{"m":${deep(100_000)}}}`, "metadata.m", /deeper than 64/],
  ])("%s → 422 naming the field, nothing written", async (_name, raw, path, message) => {
    const before = await rows();
    const response = await post(raw);
    expect(response.status).toBe(422);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    const problem = (await response.json()) as { errors: { path: string; message: string }[] };
    const error = problem.errors.find((e) => e.path.startsWith(path));
    expect(error, JSON.stringify(problem.errors)).toBeDefined();
    expect(error!.message).toMatch(message);
    expect(await rows()).toBe(before);
  });

  it("refuses input past an action's declared limits (echo's data: 256 KiB of JSON)", async () => {
    const before = await rows();
    const response = await post(JSON.stringify({ action: "echo", input: { data: "x".repeat(300 * 1024) } }));
    expect(response.status).toBe(422);
    const problem = (await response.json()) as { errors: { path: string; message: string }[] };
    expect(problem.errors).toContainEqual({ path: "input.data", message: "must be at most 262144 bytes of JSON" });
    expect(await rows()).toBe(before);
  });

  it("stores what is valid: emoji, combining marks, a surrogate pair, 64 levels", async () => {
    const response = await post(JSON.stringify({ action: "echo", input: { data: ["😀", "e\u0301", "\ud83d\ude00", JSON.parse(deep(60))] } }));
    expect(response.status).toBe(202);
  });

  it.each([
    ["client_id=%00", "grant_type=client_credentials&client_id=%00&client_secret=x"],
    ["a lone surrogate in the secret", "grant_type=client_credentials&client_id=cli_x&client_secret=%ED%A0%80"],
    ["a 10 kB client_id", `grant_type=client_credentials&client_id=${"a".repeat(10_000)}&client_secret=x`],
  ])("/oauth/token with %s answers an RFC 6749 error, not 500", async (_name, body) => {
    const response = await rt.rawRequest("/oauth/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    expect([400, 401]).toContain(response.status);
    const json = (await response.json()) as { error: string };
    expect(["invalid_request", "invalid_client"]).toContain(json.error);
  });
});
