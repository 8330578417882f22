import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, TEST_ADMIN_TOKEN, type TestRuntime } from "./helpers/runtime.js";

/**
 * Property-based fuzzing of every route: random methods, paths, query strings, headers and
 * bodies (any UTF-16, NUL and lone surrogates included, deep nesting, non-JSON). For every case:
 * never a 5xx, every error a well-formed RFC 9457 problem (RFC 6749 JSON on /oauth), and nothing
 * written by a request that was refused. FUZZ_RUNS sets the number of cases (10,000 by default).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

const anyChar = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
const nastyString = fc.oneof(
  fc.string({ unit: anyChar, maxLength: 40 }),
  fc.constantFrom("", "\u0000", "\ud800", "\udc00x", "😀", "a\u0000b", "../../etc/passwd", "' OR 1=1 --", "%00", "null", "{}", "[]", "-1", "1e309"),
);
const jsonLeaf = fc.oneof(nastyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, jsonLeaf, fc.array(tie("value"), { maxLength: 4 }), fc.dictionary(nastyString, tie("value"), { maxKeys: 4 })),
})).value;
const deep = fc.integer({ min: 60, max: 3_000 }).map((n) => `${"[".repeat(n)}0${"]".repeat(n)}`);

/** Percent-encodes every byte of the UTF-8 form (lone surrogates become U+FFFD, as a client would send). */
const percentEncoded = (text: string) => [...Buffer.from(text, "utf8")].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
/** What can travel in a header at all: visible Latin-1 and spaces (Node reads header bytes as Latin-1). */
const headerText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 60 }),
  fc.constantFrom("", "k1", "trace.id:1", "a".repeat(300), "Root=1-5759e988;Parent=53995c3f", "ÿÿ"),
);
const id = fc.oneof(fc.uuid(), nastyString.map(percentEncoded), fc.constant("limits"));
const path = fc.oneof(
  fc.constantFrom("/api/v1/async", "/api/v1/async/limits", "/api/v1/actions", "/oauth/token", "/oauth/revoke", "/healthz", "/readyz", "/metrics", "/openapi.json", "/admin/v1/tenants", "/admin/v1/clients", "/admin/v1/queues", "/admin/v1/tokens/revoke", "/nowhere", "/api/v1/nowhere"),
  id.map((x) => `/api/v1/async/${x}`),
  fc.tuple(id, fc.constantFrom("result", "events", "callback/attempts", "callback/redeliver")).map(([x, rest]) => `/api/v1/async/${x}/${rest}`),
  id.map((x) => `/admin/v1/tenants/${x}/limits`),
  id.map((x) => `/admin/v1/clients/${x}/rotate-secret`),
);
const queryValue = fc.oneof(nastyString, fc.constantFrom("QUEUED,RUNNING", "EXHAUSTED", "0", "1001", "50", "2026-11-29", "2026-11-29T10:00:00Z", "yesterday", "-1", "31", "5"));
const query = fc.dictionary(fc.oneof(fc.constantFrom("status", "action", "callbackStatus", "from", "to", "limit", "cursor", "wait", "tenant"), nastyString), queryValue, { maxKeys: 4 });

type Case = { method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string | undefined };

function caseArbitrary(validToken: string) {
  const submitBody = fc.record(
    {
      action: fc.oneof(fc.constantFrom("echo", "analyse", "http"), nastyString),
      input: fc.oneof(json, fc.record({ data: json }), fc.record({ texts: fc.array(nastyString, { maxLength: 3 }) })),
      callbackUrl: fc.oneof(nastyString, fc.constantFrom("http://127.0.0.1:9/x", "http://[::127.0.0.1]/", "http://localhost:0/", "https://example.com/hook")),
      metadata: json,
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    submitBody.map((b) => JSON.stringify(b)),
    json.map((v) => JSON.stringify(v)),
    deep,
    nastyString,
    fc.constant(undefined),
    fc.constantFrom("grant_type=client_credentials&client_id=%00&client_secret=x", "token=x", "{", '{"action":"echo","input":{"data":"\\u0000"}}'),
  );
  const headers = fc.record(
    {
      "content-type": fc.constantFrom("application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data", "application/problem+json; charset=utf-8"),
      authorization: fc.oneof(fc.constant(`Bearer ${validToken}`), fc.constant(`Bearer ${TEST_ADMIN_TOKEN}`), fc.constant("Basic Y2xpX3g6eA=="), headerText.map((s) => `Bearer ${s}`), headerText),
      "idempotency-key": headerText,
      "x-request-id": headerText,
      "last-event-id": headerText,
    },
    { requiredKeys: [] },
  );
  const anything = fc.record({ method: fc.constantFrom("GET", "POST", "DELETE", "PATCH", "PUT", "HEAD"), path, query, headers, body });
  // Most random requests stop at authentication or content negotiation; these get past them
  // and exercise validation, the storage rule, idempotency and the database.
  const authenticatedSubmit = fc.record({
    method: fc.constant("POST"),
    path: fc.constant("/api/v1/async"),
    query: fc.constant({}),
    headers: fc.record(
      { "content-type": fc.constant("application/json"), authorization: fc.constant(`Bearer ${validToken}`), "idempotency-key": fc.oneof(headerText, fc.constantFrom("k1", "k2")) },
      { requiredKeys: ["content-type", "authorization"] },
    ),
    body: fc.oneof(
      { weight: 3, arbitrary: submitBody.map((b) => JSON.stringify({ ...b, action: "echo" })) },
      { weight: 3, arbitrary: fc.record({ data: json }).map((input) => JSON.stringify({ action: "echo", input })) },
      { weight: 1, arbitrary: submitBody.map((b) => JSON.stringify(b)) },
      { weight: 1, arbitrary: deep.map((d) => `{"action":"echo","input":{"data":${d}}}`) },
    ),
  });
  const authenticatedRead = fc.record({
    method: fc.constantFrom("GET", "DELETE", "POST"),
    path,
    query,
    headers: fc.constant({ authorization: `Bearer ${validToken}` }),
    body: fc.constant(undefined),
  });
  return fc.oneof({ weight: 4, arbitrary: anything }, { weight: 4, arbitrary: authenticatedSubmit }, { weight: 2, arbitrary: authenticatedRead });
}

/** What the server may not send even for the worst input. */
function problemsWith(c: Case, status: number, contentType: string, text: string): string | undefined {
  if (status >= 500) return `status ${status}`;
  if (status < 400 || c.method === "HEAD") return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `error body is not JSON: ${text.slice(0, 100)}`;
  }
  if (c.path.startsWith("/oauth/") && contentType.startsWith("application/json")) {
    return typeof parsed.error === "string" ? undefined : "OAuth error without `error`";
  }
  if (!contentType.startsWith("application/problem+json")) return `error content-type ${contentType}`;
  for (const field of ["type", "title", "status", "detail", "code"]) if (!(field in parsed)) return `problem without ${field}`;
  return parsed.status === status ? undefined : `problem status ${String(parsed.status)} ≠ ${status}`;
}

describe("fuzzing every endpoint", { timeout: 600_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    // API only: accepted requests stay QUEUED, so rows and jobs can be counted exactly.
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { LOG_LEVEL: "fatal", AUTH_FAILURES_PER_ADDRESS: "1000000", AUTH_FAILURES_PER_CLIENT: "1000000" } });
  });
  afterAll(() => rt.stop());

  it(`survives ${RUNS} random requests: no 5xx, every error a problem, nothing half-written`, async () => {
    const accepted = new Set<string>();
    const statuses = new Map<number, number>();
    let cases = 0;
    let unsendable = 0;
    await fc.assert(
      fc.asyncProperty(caseArbitrary(rt.client.token), async (c) => {
        cases++;
        const search = new URLSearchParams(c.query).toString();
        const init: RequestInit = { method: c.method, headers: c.headers };
        if (c.body !== undefined && c.method !== "GET" && c.method !== "HEAD") init.body = c.body;
        let response: Response;
        try {
          response = await rt.rawRequest(`${c.path}${search ? `?${search}` : ""}`, init);
        } catch (error) {
          // The in-process Request refuses what no HTTP client could send (an invalid header value).
          if (error instanceof TypeError) return void unsendable++;
          throw error;
        }
        const text = c.path.endsWith("/events") && response.status === 200 ? (await response.body?.cancel(), "") : await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const problem = problemsWith(c, response.status, response.headers.get("content-type") ?? "", text);
        if (problem) throw new Error(`${problem} for ${c.method} ${c.path}`);
        if (response.status === 202 && c.path === "/api/v1/async") accepted.add((JSON.parse(text) as { asyncRequest: { id: string } }).asyncRequest.id);
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    // Refused requests left nothing: every row and every job belongs to an accepted submit.
    const rows = await rt.db.sql.query<{ id: string }>("select id from async_requests");
    expect(new Set(rows.map((r) => r.id))).toEqual(accepted);
    const jobs = await rt.services.admin.queueStats();
    expect((jobs.jobs.waiting ?? 0) + (jobs.jobs.delayed ?? 0) + (jobs.jobs.prioritized ?? 0)).toBe(accepted.size);
    expect(unsendable).toBeLessThan(RUNS / 20);
    console.log(`fuzz: ${cases} cases (${cases - unsendable} sent), ${accepted.size} accepted submits, no 5xx, every error a problem; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(cases).toBe(RUNS);
  });
});
