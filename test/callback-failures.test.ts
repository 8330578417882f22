import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer } from "./helpers/dns-server.js";
import { runCli } from "./helpers/process.js";
import { answer, startReceiver, type Receiver } from "./helpers/receiver.js";
import { freePort } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, TEST_ADMIN_TOKEN, waitForCallback, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

type Attempt = { series: number; attempt: number; webhookId: string; statusCode: number | null; errorClass: string | null; errorMessage: string | null; responseBody: string | null; delivered: boolean };

describe("what counts as a failed attempt", () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    // Host names resolve through a local DNS server that knows none of them.
    dns = await startDnsServer(() => ["NXDOMAIN"]);
    // One retry, far away: each test looks at the first attempt only.
    rt = await startTestRuntime({
      env: { OUTBOUND_ALLOW: "127.0.0.1/32", OUTBOUND_DNS_SERVERS: dns.server, CALLBACK_RETRY_DELAYS: "1h", CALLBACK_TIMEOUT: "300ms" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
    await dns.close();
  });

  const firstAttempt = async (callbackUrl: string): Promise<Attempt> => {
    const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl }));
    const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
    const retrying = await waitForCallback(rt, rt, id, ["RETRYING", "DELIVERED"]);
    expect(retrying.callback.status).toBe("RETRYING");
    const next = Date.parse(retrying.callback.nextAttemptAt!) - Date.parse(retrying.callback.lastAttemptAt!);
    expect(next).toBeGreaterThanOrEqual(3_600_000); // the next attempt waits the configured delay
    const attempts = ((await (await rt.request(`/api/v1/async/${id}/callback/attempts`)).json()) as { attempts: Attempt[] }).attempts;
    expect(attempts).toHaveLength(1);
    return attempts[0]!;
  };

  for (const status of [201, 202, 204, 400, 404, 500, 503]) {
    it(`HTTP ${status} is a failed attempt`, async () => {
      receiver.on(`/status/${status}`, answer(status, "nope"));
      const attempt = await firstAttempt(receiver.url(`/status/${status}`));
      expect(attempt).toMatchObject({ statusCode: status, delivered: false, errorClass: "http_status" });
    });
  }

  for (const status of [301, 302, 307, 308]) {
    it(`a ${status} redirect is a failed attempt and is not followed`, async () => {
      receiver.on(`/redirect/${status}`, answer(status, "", { location: receiver.url("/redirect-target") }));
      const attempt = await firstAttempt(receiver.url(`/redirect/${status}`));
      expect(attempt).toMatchObject({ statusCode: status, delivered: false, errorClass: "http_status" });
      expect(receiver.requestsTo("/redirect-target")).toHaveLength(0);
    });
  }

  it("a receiver that does not answer in time is a failed attempt (timeout)", async () => {
    receiver.on("/hang", () => {}); // never answers
    const attempt = await firstAttempt(receiver.url("/hang"));
    expect(attempt).toMatchObject({ statusCode: null, delivered: false, errorClass: "timeout" });
  });

  it("a refused connection is a failed attempt", async () => {
    const port = await freePort();
    const attempt = await firstAttempt(`http://127.0.0.1:${port}/nobody-listens`);
    expect(attempt).toMatchObject({ statusCode: null, errorClass: "connection_refused" });
  });

  it("a reset connection is a failed attempt", async () => {
    const server = createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const attempt = await firstAttempt(`http://127.0.0.1:${(server.address() as { port: number }).port}/reset`);
      expect(attempt).toMatchObject({ statusCode: null, errorClass: "connection_reset" });
    } finally {
      server.close();
    }
  });

  it("a DNS failure is a failed attempt", async () => {
    const attempt = await firstAttempt("http://no-such-host.test/hook");
    expect(attempt).toMatchObject({ statusCode: null, errorClass: "dns_failure" });
    expect(dns.queries.map((q) => q.name)).toContain("no-such-host.test");
  });

  it("a TLS failure is a failed attempt", async () => {
    // A plain-HTTP server spoken to over https: the TLS handshake fails.
    receiver.on("/tls", answer(200));
    const attempt = await firstAttempt(`https://127.0.0.1:${receiver.port}/tls`);
    expect(attempt).toMatchObject({ statusCode: null, errorClass: "tls_error" });
  });
});

describe("redelivery", { timeout: 90_000 }, () => {
  let rt: TestRuntime;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "10ms,10ms", CALLBACK_TIMEOUT: "500ms" } });
  });
  afterAll(async () => {
    await rt.stop();
    await receiver.close();
  });

  it("starts a new series after EXHAUSTED, with a new webhook-id; 409 while one is in flight", async () => {
    let healthy = false;
    receiver.on("/hooks/flaky", (_req, res) => res.writeHead(healthy ? 200 : 500).end());
    const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/flaky") }));
    const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
    await waitForCallback(rt, rt, id, "EXHAUSTED");
    expect(receiver.requestsTo("/hooks/flaky")).toHaveLength(3);

    healthy = true;
    const redeliver = await rt.request(`/api/v1/async/${id}/callback/redeliver`, { method: "POST" });
    expect(redeliver.status).toBe(202);
    const body = (await redeliver.json()) as { asyncRequest: { callback: { status: string; attempts: number } } };
    expect(body.asyncRequest.callback).toMatchObject({ status: "PENDING", attempts: 0 });
    const again = await rt.request(`/api/v1/async/${id}/callback/redeliver`, { method: "POST" });
    // Either still in flight (409) or already delivered by now; in flight is the usual case.
    if (again.status !== 202) expect(again.status).toBe(409);
    await waitForCallback(rt, rt, id, "DELIVERED");

    const deliveries = receiver.requestsTo("/hooks/flaky");
    const last = deliveries.at(-1)!;
    expect(last.headers["webhook-id"]).not.toBe(deliveries[0]!.headers["webhook-id"]);
    const attempts = ((await (await rt.request(`/api/v1/async/${id}/callback/attempts`)).json()) as { attempts: Attempt[] }).attempts;
    expect(attempts.filter((a) => a.series === 1)).toHaveLength(3);
    expect(attempts.filter((a) => a.series >= 2).at(-1)).toMatchObject({ delivered: true, statusCode: 200 });
  });

  it("answers 409 while the callback is in flight, without a callbackUrl, and before the request finishes", async () => {
    receiver.on("/hooks/slow-ok", (_req, res) => setTimeout(() => res.writeHead(200).end(), 300));
    const inFlight = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: receiver.url("/hooks/slow-ok") }));
    const { id } = ((await inFlight.json()) as { asyncRequest: { id: string } }).asyncRequest;
    await receiver.waitFor("/hooks/slow-ok", 1); // the attempt is on the wire now
    expect((await rt.request(`/api/v1/async/${id}/callback/redeliver`, { method: "POST" })).status).toBe(409);

    const plain = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {} }));
    const plainId = ((await plain.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    await waitForStatus(rt, plainId, "COMPLETED");
    expect((await rt.request(`/api/v1/async/${plainId}/callback/redeliver`, { method: "POST" })).status).toBe(409);

    const running = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: { delayMs: 60_000 }, callbackUrl: receiver.url("/hooks/x") }));
    const runningId = ((await running.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    expect((await rt.request(`/api/v1/async/${runningId}/callback/redeliver`, { method: "POST" })).status).toBe(409);
    await rt.request(`/api/v1/async/${runningId}`, { method: "DELETE" });

    const other = await rt.createClient();
    expect((await other.request(`/api/v1/async/${id}/callback/redeliver`, { method: "POST" })).status).toBe(404);
    expect((await other.request(`/api/v1/async/${id}/callback/attempts`)).status).toBe(404);
  });

  it("operators redeliver every EXHAUSTED callback of a tenant since a time (admin API and CLI)", async () => {
    let healthy = false;
    receiver.on("/hooks/bulk", (_req, res) => res.writeHead(healthy ? 200 : 500).end());
    const client = await rt.createClient();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await client.request("/api/v1/async", jsonBody({ action: "echo", input: { data: i }, callbackUrl: receiver.url("/hooks/bulk") }));
      ids.push(((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id);
    }
    for (const id of ids) await waitForCallback(rt, client, id, "EXHAUSTED");
    healthy = true;
    const listed = (await (await client.request("/api/v1/async?callbackStatus=EXHAUSTED")).json()) as { asyncRequests: { id: string }[] };
    expect(listed.asyncRequests.map((r) => r.id).sort()).toEqual([...ids].sort());
    const none = (await (await client.request("/api/v1/async?callbackStatus=DELIVERED")).json()) as { asyncRequests: unknown[] };
    expect(none.asyncRequests).toEqual([]);

    const future = await rt.rawRequest(`/admin/v1/tenants/${client.tenantId}/callbacks/redeliver`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ since: new Date(Date.now() + 3_600_000).toISOString() }),
    });
    expect(await future.json()).toEqual({ redelivered: 0 });

    const first = ids[0]!;
    const viaApi = await rt.rawRequest(`/admin/v1/tenants/${client.tenantId}/callbacks/redeliver`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ since: new Date(Date.now() - 3_600_000).toISOString() }),
    });
    expect(await viaApi.json()).toEqual({ redelivered: 3 });
    for (const id of ids) await waitForCallback(rt, client, id, "DELIVERED");

    // Exhaust one again, then redeliver it with the CLI.
    healthy = false;
    await client.request(`/api/v1/async/${first}/callback/redeliver`, { method: "POST" });
    await waitForCallback(rt, client, first, "EXHAUSTED");
    healthy = true;
    const cli = await runCli(["callbacks", "redeliver", "--tenant", client.tenantId, "--since", "1h"], { ...rt.env, RICOCHET_URL: "", LOG_LEVEL: "warn" });
    expect(cli.stderr).toBe("");
    expect(cli.stdout).toContain("1 callback(s) redelivered");
    await waitForCallback(rt, client, first, "DELIVERED");
  });
});
