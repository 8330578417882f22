import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";
import type { Receiver } from "./helpers/receiver.js";
import { CapturedLogs, jsonBody, startRuntimeWithReceiver, TEST_ADMIN_TOKEN, waitForCallback, type TestRuntime } from "./helpers/runtime.js";

type Line = Record<string, unknown> & { msg: string; level: number };

describe("one log line per HTTP request, action run and delivery attempt", { timeout: 60_000 }, () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  let stop: () => Promise<void>;
  beforeAll(async () => ({ rt, receiver, stop } = await startRuntimeWithReceiver()));
  afterAll(() => stop());
  const lines = () => rt.logs.lines.map((line) => JSON.parse(line) as Line);

  it("carries the request id, route template, status, duration, tenant and async request; every secret stays out", async () => {
    receiver.on("/hooks/flaky", (_req, res, count) => res.writeHead(count === 1 ? 500 : 200).end());
    const client = await rt.createClient();
    // A token obtained over HTTP, with the client's secret in an Authorization: Basic header.
    const basic = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64");
    const issued = await rt.rawRequest("/oauth/token", {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", "x-request-id": "logs-token" },
      body: "grant_type=client_credentials",
    });
    expect(issued.status).toBe(200);
    const { access_token: token } = (await issued.json()) as { access_token: string };
    const asClient = (path: string, init: RequestInit = {}) => rt.rawRequest(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });

    const submitted = await asClient("/api/v1/async", {
      ...jsonBody({ action: "echo", input: { data: "x" }, callbackUrl: receiver.url("/hooks/flaky") }),
      headers: { "content-type": "application/json", "x-request-id": "logs-submit" },
    });
    expect(submitted.status).toBe(202);
    const { id } = ((await submitted.json()) as { asyncRequest: { id: string } }).asyncRequest;
    await waitForCallback(rt, { request: asClient }, id, "DELIVERED");
    expect((await asClient(`/api/v1/async/${id}`, { headers: { "x-request-id": "logs-get" } })).status).toBe(200);
    expect((await rt.rawRequest("/admin/v1/tenants", { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "x-request-id": "logs-admin" } })).status).toBe(200);
    expect((await rt.rawRequest("/api/v1/async/limits", { headers: { "x-request-id": "logs-refused" } })).status).toBe(401);
    expect((await rt.rawRequest("/metrics")).status).toBe(200);

    const all = lines();
    const http = (requestId: string) => all.filter((line) => line.msg === "http request" && line.requestId === requestId);
    // Exactly one line per request, nothing from the body or the headers.
    expect(http("logs-token")).toEqual([expect.objectContaining({ method: "POST", route: "/oauth/token", status: 200, durationMs: expect.any(Number) })]);
    expect(http("logs-submit")).toEqual([
      expect.objectContaining({ level: 30, method: "POST", route: "/api/v1/async", status: 202, durationMs: expect.any(Number), tenantId: client.tenantId, asyncRequestId: id }),
    ]);
    expect(http("logs-get")).toEqual([expect.objectContaining({ method: "GET", route: "/api/v1/async/:id", status: 200, tenantId: client.tenantId, asyncRequestId: id })]);
    expect(http("logs-admin")).toEqual([expect.objectContaining({ method: "GET", route: "/admin/v1/tenants", status: 200 })]);
    expect(http("logs-refused")).toEqual([expect.objectContaining({ route: "/api/v1/async/limits", status: 401 })]);
    expect(http("logs-refused")[0]).not.toHaveProperty("tenantId");
    // Scrapes and probes are debug lines: at LOG_LEVEL=info they are not written.
    expect(all.filter((line) => line.msg === "http request" && line.route === "/metrics")).toEqual([]);

    // One line for the run, with its outcome; one per delivery attempt, with its outcome class.
    const ofRequest = all.filter((line) => line.asyncRequestId === id && line.msg !== "http request");
    expect(ofRequest.filter((line) => line.msg === "action run")).toEqual([
      expect.objectContaining({ tenantId: client.tenantId, action: "echo", outcome: "COMPLETED", run: 1, durationMs: expect.any(Number) }),
    ]);
    const attempts = ofRequest.filter((line) => /^callback /.test(line.msg));
    expect(attempts).toEqual([
      expect.objectContaining({ msg: "callback attempt failed", tenantId: client.tenantId, attempt: 1, outcome: "5xx", statusCode: 500, durationMs: expect.any(Number) }),
      expect.objectContaining({ msg: "callback delivered", tenantId: client.tenantId, attempt: 2, outcome: "200", statusCode: 200, durationMs: expect.any(Number) }),
    ]);

    // No secret appears anywhere: not the client's secret (nor its Basic form), the tokens, the
    // webhook signing secret, the admin token, or a signature the receiver got.
    const signatures = receiver.requestsTo("/hooks/flaky").flatMap((delivery) => String(delivery.headers["webhook-signature"]).split(" ").map((sig) => sig.replace(/^v1,/, "")));
    expect(signatures).toHaveLength(2);
    const secrets = [client.clientSecret, basic, token, client.token, client.webhookSecret, client.webhookSecret.replace(/^whsec_/, ""), TEST_ADMIN_TOKEN, ...signatures];
    for (const secret of secrets) expect(rt.logs.text).not.toContain(secret);
  });

  it("redacts secrets that code logs by mistake: headers, client and webhook secrets, tokens, signatures", () => {
    const logs = new CapturedLogs();
    const logger = createLogger("info", logs);
    const secret = "never-print-4711";
    logger.info(
      {
        headers: { authorization: `Bearer ${secret}1`, cookie: `${secret}2`, "webhook-signature": `v1,${secret}3` },
        req: { headers: { authorization: `Basic ${secret}4` } },
        client: { clientSecret: `${secret}5`, webhookSecret: `${secret}6` },
        client_secret: `${secret}7`,
        token: `${secret}8`,
        access_token: `${secret}9`,
        signature: `${secret}10`,
        keep: "visible",
      },
      "a careless line",
    );
    logger.child({ adminToken: `${secret}11` }).info({ body: { refresh_token: `${secret}12` } }, "a careless child");
    expect(logs.text).toContain("visible");
    expect(logs.text).toContain("[redacted]");
    expect(logs.text).not.toContain(secret);
  });

  it("redacts nested secrets wherever a line carries them: each field, child bindings, errors; leaves the rest of the line alone", () => {
    const logs = new CapturedLogs();
    const logger = createLogger("info", logs);
    const secret = "never-print-4712";
    const failed = Object.assign(new Error("upstream said no"), { headers: { authorization: `Bearer ${secret}1` }, secret: `${secret}2` });
    const cause = Object.assign(new Error("the cause"), { password: `${secret}3` });
    logger.child({ client: { webhookSecret: `${secret}4` }, tenant: "t1" }).info({ err: failed, cause, ids: { requestId: "r1" } }, "an error with secrets");
    // Something that is not an error under `err` is still checked.
    logger.warn({ err: { headers: { cookie: `${secret}5` } } }, "an error-like object");
    // The common line, nothing nested to redact: written as it is.
    logger.info({ asyncRequestId: "a1", durationMs: 3, outcome: { status: "COMPLETED" } }, "action run");
    const [first, errorLike, second] = logs.lines.map((line) => JSON.parse(line) as Record<string, any>);
    expect(logs.text).not.toContain(secret);
    expect(first).toMatchObject({
      tenant: "t1",
      client: { webhookSecret: "[redacted]" },
      err: { message: "upstream said no", headers: { authorization: "[redacted]" }, secret: "[redacted]" },
      cause: { password: "[redacted]" },
      ids: { requestId: "r1" },
    });
    expect(first!.err.stack).toContain("upstream said no");
    expect(errorLike).toMatchObject({ err: { headers: { cookie: "[redacted]" } } });
    expect(second).toMatchObject({ asyncRequestId: "a1", durationMs: 3, outcome: { status: "COMPLETED" }, msg: "action run" });
  });
});
