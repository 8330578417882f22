import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/process.js";
import { jsonBody, startTestRuntime, TEST_ADMIN_TOKEN, type TestRuntime } from "./helpers/runtime.js";

const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" };

describe("admin API", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  const admin = (method: string, path: string, body?: unknown) =>
    rt.rawRequest(path, { method, headers: adminHeaders, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it("refuses a missing or wrong admin token", async () => {
    expect((await rt.rawRequest("/admin/v1/tenants")).status).toBe(401);
    const wrong = await rt.rawRequest("/admin/v1/tenants", { headers: { authorization: "Bearer test-admin-token-0123456789abcdeX" } });
    expect(wrong.status).toBe(401);
    // A client's bearer token is not an admin token.
    expect((await rt.rawRequest("/admin/v1/tenants", { headers: { authorization: `Bearer ${rt.client.token}` } })).status).toBe(401);
  });

  it("creates tenants and clients, sets limits, rotates and revokes", async () => {
    const created = await admin("POST", "/admin/v1/tenants", { id: "acme", name: "Acme", maxQueued: 50 });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: "acme", name: "Acme", limits: { maxQueued: 50, maxConcurrent: 10 } });
    expect((await admin("POST", "/admin/v1/tenants", { id: "acme" })).status).toBe(409);
    expect((await admin("POST", "/admin/v1/tenants", { id: "Not Valid!" })).status).toBe(422);

    const limits = await admin("PATCH", "/admin/v1/tenants/acme/limits", { maxConcurrent: 3, maxQueued: null });
    expect(await limits.json()).toMatchObject({ limits: { maxConcurrent: 3, maxQueued: 10_000, maxQueuedOverridden: false } });
    expect((await admin("PATCH", "/admin/v1/tenants/nope/limits", { maxConcurrent: 3 })).status).toBe(404);

    const clientResponse = await admin("POST", "/admin/v1/tenants/acme/clients", { name: "billing", scopes: ["read"] });
    expect(clientResponse.status).toBe(201);
    expect(clientResponse.headers.get("cache-control")).toBe("no-store");
    const client = (await clientResponse.json()) as { clientId: string; clientSecret: string; webhookSecret: string; scopes: string[] };
    expect(client.clientId).toMatch(/^cli_[0-9a-f]{24}$/);
    expect(client.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(client.webhookSecret.slice(6), "base64")).toHaveLength(32);
    expect(client.scopes).toEqual(["read"]);
    expect((await admin("POST", "/admin/v1/tenants/nope/clients", { name: "x" })).status).toBe(404);

    const list = (await (await admin("GET", "/admin/v1/clients?tenant=acme")).json()) as { clients: { clientId: string; clientSecret?: string }[] };
    expect(list.clients.map((c) => c.clientId)).toEqual([client.clientId]);
    expect(list.clients[0]).not.toHaveProperty("clientSecret");

    // Webhook secret rotation: both secrets sign during the overlap.
    const rotated = (await (await admin("POST", `/admin/v1/clients/${client.clientId}/rotate-secret`, { overlapSeconds: 3600 })).json()) as { webhookSecret: string };
    expect(await rt.services.admin.signingSecrets(client.clientId)).toEqual([client.webhookSecret, rotated.webhookSecret]);
    const noOverlap = (await (await admin("POST", `/admin/v1/clients/${client.clientId}/rotate-secret`, { overlapSeconds: 0 })).json()) as { webhookSecret: string };
    expect(await rt.services.admin.signingSecrets(client.clientId)).toEqual([noOverlap.webhookSecret]);

    // Client secret rotation: the old secret stops working at once.
    const token = async (secret: string) =>
      rt.rawRequest("/oauth/token", { method: "POST", body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: secret }) });
    const fresh = (await (await admin("POST", `/admin/v1/clients/${client.clientId}/rotate-secret`, { kind: "client" })).json()) as { clientSecret: string };
    expect((await token(client.clientSecret)).status).toBe(401);
    const issued = (await (await token(fresh.clientSecret)).json()) as { access_token: string };
    expect((await rt.rawRequest("/api/v1/async", { headers: { authorization: `Bearer ${issued.access_token}` } })).status).toBe(200);

    // Revoking the client revokes its tokens.
    const revoked = (await (await admin("POST", `/admin/v1/clients/${client.clientId}/revoke`)).json()) as { tokensRevoked: number; revokedAt: string };
    expect(revoked.tokensRevoked).toBe(1);
    expect(revoked.revokedAt).toBeTruthy();
    expect((await rt.rawRequest("/api/v1/async", { headers: { authorization: `Bearer ${issued.access_token}` } })).status).toBe(401);
  });

  it("shows the queues' job counts", async () => {
    await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {} })); // no worker here: it waits
    const stats = (await (await admin("GET", "/admin/v1/queues")).json()) as { jobs: Record<string, number>; callbacks: Record<string, number> };
    expect(stats.jobs.waiting).toBeGreaterThanOrEqual(1);
    expect(Object.keys(stats.callbacks)).toEqual(expect.arrayContaining(["waiting", "active", "delayed", "failed", "completed"]));
  });

  it("revokes tokens one at a time or per client", async () => {
    const client = await rt.createClient();
    const body = await admin("POST", "/admin/v1/tokens/revoke", { token: client.token });
    expect(await body.json()).toEqual({ revoked: 1 });
    expect((await client.request("/api/v1/async")).status).toBe(401);
    expect((await admin("POST", "/admin/v1/tokens/revoke", {})).status).toBe(422);
  });

  it("is disabled (404) when ADMIN_TOKEN is unset", async () => {
    const { ADMIN_TOKEN: _unused, ...env } = rt.env;
    const closed = await startTestRuntime({ roles: { api: true, worker: false }, db: rt.db, env: { ...env, ADMIN_TOKEN: "" } });
    try {
      expect((await closed.rawRequest("/admin/v1/tenants", { headers: adminHeaders })).status).toBe(404);
    } finally {
      await closed.stop();
    }
  });
});

describe("secrets at rest and in logs", () => {
  it("keeps no client secret, token or webhook secret in clear in the database or the logs", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { LOG_LEVEL: "trace" } });
    try {
      const client = await rt.createClient();
      const viaHttp = await rt.rawRequest("/oauth/token", {
        method: "POST",
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }),
      });
      const { access_token } = (await viaHttp.json()) as { access_token: string };
      await rt.rawRequest("/api/v1/async", { ...jsonBody({ action: "echo", input: {} }), headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" } });
      const rotated = await rt.services.admin.rotateWebhookSecret(client.clientId);
      const secrets = [client.clientSecret, client.token, access_token, client.webhookSecret, client.webhookSecret.slice(6), rotated.webhookSecret.slice(6), TEST_ADMIN_TOKEN];

      const tables = ["tenants", "api_clients", "signing_secrets", "access_tokens", "idempotency_keys", "async_requests"];
      let dump = "";
      for (const table of tables) {
        const result = await rt.db.db.execute(sql.raw(`select coalesce(json_agg(t)::text, '') as dump from ${table} t`));
        dump += (result as unknown as { rows: { dump: string }[] }).rows[0]!.dump;
      }
      expect(dump).toContain(client.clientId); // the dump is real
      expect(dump).toContain("scrypt$");
      for (const secret of secrets) {
        expect(dump).not.toContain(secret);
        expect(rt.logs.text).not.toContain(secret);
      }
      expect(rt.logs.text).toContain("token issued");
    } finally {
      await rt.stop();
    }
  });
});

describe("ricochet CLI on the database", { timeout: 120_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  it("creates a tenant and a client that then work against the running server; lists, limits, revokes", async () => {
    const env = { ...rt.env, RICOCHET_URL: "", LOG_LEVEL: "warn" };
    const tenant = await runCli(["tenants", "create", "initech", "--name", "Initech", "--max-concurrent", "4"], env);
    expect(tenant.stderr).toBe("");
    expect(tenant.stdout).toContain("tenant initech created (max concurrent 4");
    const created = await runCli(["--json", "clients", "create", "--tenant", "initech", "--name", "reports"], env);
    expect(created.code).toBe(0);
    const client = JSON.parse(created.stdout) as { clientId: string; clientSecret: string };

    const tokenResponse = await rt.rawRequest("/oauth/token", {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }),
    });
    expect(tokenResponse.status).toBe(200);
    const { access_token } = (await tokenResponse.json()) as { access_token: string };
    const auth = { authorization: `Bearer ${access_token}` };
    const limits = (await (await rt.rawRequest("/api/v1/async/limits", { headers: auth })).json()) as { concurrentRequests: { limit: number } };
    expect(limits.concurrentRequests.limit).toBe(4);

    const listed = await runCli(["tenants", "list"], env);
    expect(listed.stdout).toMatch(/initech\tInitech\tmaxConcurrent=4/);
    expect((await runCli(["tenants", "set-limits", "initech", "--max-queued", "7"], env)).stdout).toContain("max queued 7");
    // "default" resets a limit, as the README says.
    const reset = await runCli(["tenants", "set-limits", "initech", "--max-concurrent", "default"], env);
    expect(reset.stderr).toBe("");
    expect(reset.stdout).toContain("tenant initech: max concurrent 10, max queued 7");
    expect((await runCli(["clients", "list", "--tenant", "initech"], env)).stdout).toContain(`${client.clientId}\tinitech\treports\tread write\tactive`);
    const rotation = await runCli(["clients", "rotate-secret", client.clientId, "--overlap", "1h"], env);
    expect(rotation.stdout).toMatch(/webhook secret: whsec_/);

    expect((await runCli(["queues"], env)).stdout).toMatch(/^jobs\twaiting=\d+ active=\d+/m);

    const heard = new Promise<void>((resolve) => rt.pubsub.onTokenRevoked(() => resolve()));
    expect((await runCli(["tokens", "revoke", "--client", client.clientId], env)).stdout).toContain("1 token(s) revoked");
    await heard;
    expect((await rt.rawRequest("/api/v1/async", { headers: auth })).status).toBe(401);

    const bad = await runCli(["clients", "create", "--tenant", "nope", "--name", "x"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Tenant nope not found");
  });
});
