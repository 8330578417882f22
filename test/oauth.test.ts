import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "./helpers/clock.js";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

type TokenJson = { token_type: string; access_token: string; expires_in: number; scope: string };
type OAuthErrorJson = { error: string; error_description: string };

describe("POST /oauth/token", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  const tokenRequest = (init: RequestInit) => rt.rawRequest("/oauth/token", { method: "POST", ...init });
  const creds = () => ({ client_id: rt.client.clientId, client_secret: rt.client.clientSecret });

  async function expectToken(response: Response, scope = "read write"): Promise<TokenJson> {
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as TokenJson;
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 86_400, scope });
    expect(body.access_token).toMatch(/^rct_[\w-]{43}$/);
    const use = await rt.rawRequest("/api/v1/async", { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(use.status).toBe(200);
    return body;
  }

  async function expectOAuthError(response: Response, status: number, error: string): Promise<OAuthErrorJson> {
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await response.json()) as OAuthErrorJson;
    expect(body.error).toBe(error);
    expect(body.error_description).toBeTruthy();
    return body;
  }

  it("issues a token for a form-encoded body", async () => {
    await expectToken(await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", ...creds() }) }));
  });

  it("issues a token for a multipart body", async () => {
    const form = new FormData();
    for (const [name, value] of Object.entries({ grant_type: "client_credentials", ...creds(), scope: "read" })) form.set(name, value);
    await expectToken(await tokenRequest({ body: form }), "read");
  });

  it("issues a token for a JSON body", async () => {
    const response = await tokenRequest({ headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "client_credentials", ...creds(), scope: "*" }) });
    await expectToken(response);
  });

  it("issues a token for HTTP Basic credentials", async () => {
    const basic = Buffer.from(`${encodeURIComponent(rt.client.clientId)}:${encodeURIComponent(rt.client.clientSecret)}`).toString("base64");
    const response = await tokenRequest({ headers: { authorization: `Basic ${basic}` }, body: new URLSearchParams({ grant_type: "client_credentials", scope: "write read" }) });
    await expectToken(response, "write read");
  });

  it("answers invalid_client (401) for a wrong secret, an unknown client, missing credentials", async () => {
    const wrong = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", client_id: rt.client.clientId, client_secret: "cs_wrong" }) });
    await expectOAuthError(wrong, 401, "invalid_client");
    // Credentials in the body: no challenge (a Bearer one would read as a protected-resource error).
    expect(wrong.headers.get("www-authenticate")).toBeNull();
    const unknown = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", client_id: "cli_nobody", client_secret: "x" }) });
    await expectOAuthError(unknown, 401, "invalid_client");
    expect(unknown.headers.get("www-authenticate")).toBeNull();
    const none = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials" }) });
    await expectOAuthError(none, 401, "invalid_client");
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="ricochet"');
    const basic = Buffer.from(`${rt.client.clientId}:nope`).toString("base64");
    const badBasic = await tokenRequest({ headers: { authorization: `Basic ${basic}` }, body: new URLSearchParams({ grant_type: "client_credentials" }) });
    await expectOAuthError(badBasic, 401, "invalid_client");
    expect(badBasic.headers.get("www-authenticate")).toBe('Basic realm="ricochet"');
  });

  it("answers invalid_client for a revoked client", async () => {
    const other = await rt.createClient();
    await rt.services.admin.revokeClient(other.clientId);
    const response = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", client_id: other.clientId, client_secret: other.clientSecret }) });
    await expectOAuthError(response, 401, "invalid_client");
  });

  it("answers invalid_request (400) for a missing grant_type, two credential methods, or an unreadable body", async () => {
    await expectOAuthError(await tokenRequest({ body: new URLSearchParams(creds()) }), 400, "invalid_request");
    const basic = Buffer.from(`${rt.client.clientId}:${rt.client.clientSecret}`).toString("base64");
    const both = await tokenRequest({ headers: { authorization: `Basic ${basic}` }, body: new URLSearchParams({ grant_type: "client_credentials", ...creds() }) });
    await expectOAuthError(both, 400, "invalid_request");
    await expectOAuthError(await tokenRequest({ headers: { "content-type": "text/plain" }, body: "grant_type=client_credentials" }), 400, "invalid_request");
    await expectOAuthError(await tokenRequest({ headers: { "content-type": "application/json" }, body: "{nope" }), 400, "invalid_request");
    await expectOAuthError(await tokenRequest({ headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: ["client_credentials"] }) }), 400, "invalid_request");
    const repeated = `grant_type=client_credentials&grant_type=client_credentials&client_id=${rt.client.clientId}&client_secret=${rt.client.clientSecret}`;
    await expectOAuthError(await tokenRequest({ headers: { "content-type": "application/x-www-form-urlencoded" }, body: repeated }), 400, "invalid_request");
  });

  it("answers unsupported_grant_type (400) for any other grant", async () => {
    const response = await tokenRequest({ body: new URLSearchParams({ grant_type: "password", username: "u", password: "p", ...creds() }) });
    await expectOAuthError(response, 400, "unsupported_grant_type");
  });

  it("answers invalid_scope (400) for an unknown scope or one the client may not have", async () => {
    await expectOAuthError(await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", ...creds(), scope: "read admin" }) }), 400, "invalid_scope");
    const reader = await rt.createClient({ scopes: ["read"], tokenScope: "read" });
    const response = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", client_id: reader.clientId, client_secret: reader.clientSecret, scope: "write" }) });
    await expectOAuthError(response, 400, "invalid_scope");
    const star = await tokenRequest({ body: new URLSearchParams({ grant_type: "client_credentials", client_id: reader.clientId, client_secret: reader.clientSecret, scope: "*" }) });
    expect(((await star.json()) as TokenJson).scope).toBe("read");
  });
});

describe("bearer tokens on /api", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  it("401 with WWW-Authenticate for a missing or unknown token, as problem+json", async () => {
    const missing = await rt.rawRequest("/api/v1/async");
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="ricochet"');
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    const unknown = await rt.rawRequest("/api/v1/async", { headers: { authorization: "Bearer rct_made_up" } });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const basic = await rt.rawRequest("/api/v1/async", { headers: { authorization: "Basic abc" } });
    expect(basic.status).toBe(401);
  });

  it("403 when the token lacks the scope: read cannot write, write cannot read", async () => {
    const reader = await rt.createClient({ tokenScope: "read" });
    expect((await reader.request("/api/v1/async")).status).toBe(200);
    const denied = await reader.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ action: "echo", input: {} }) });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(((await denied.json()) as { code: string }).code).toBe("forbidden");
    const writer = await rt.createClient({ tokenScope: "write" });
    const submitted = await writer.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ action: "echo", input: {} }) });
    expect(submitted.status).toBe(202);
    const { asyncRequest } = (await submitted.json()) as { asyncRequest: { id: string } };
    expect((await writer.request(`/api/v1/async/${asyncRequest.id}`)).status).toBe(403);
    expect((await writer.request(`/api/v1/async/${asyncRequest.id}`, { method: "DELETE" })).status).toBe(200);
  });

  it("names the client in createdBy", async () => {
    const other = await rt.createClient();
    const response = await other.request("/api/v1/async", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ action: "echo", input: {} }) });
    expect(((await response.json()) as { asyncRequest: { createdBy: unknown } }).asyncRequest.createdBy).toEqual({ clientId: other.clientId });
  });

  it("a client revokes its own token (RFC 7009); someone else's is refused (unauthorized_client) and stays valid", async () => {
    const mine = await rt.createClient();
    const theirs = await rt.createClient();
    const revokeAs = (client: typeof mine, token: string) =>
      rt.rawRequest("/oauth/revoke", { method: "POST", body: new URLSearchParams({ token, client_id: client.clientId, client_secret: client.clientSecret }) });
    const foreign = await revokeAs(mine, theirs.token);
    expect(foreign.status).toBe(400); // RFC 7009 §2.1: refused, and the token stays valid
    expect(foreign.headers.get("content-type")).toMatch(/^application\/json/);
    expect(((await foreign.json()) as OAuthErrorJson).error).toBe("unauthorized_client");
    expect((await theirs.request("/api/v1/async")).status).toBe(200);
    expect((await revokeAs(mine, mine.token)).status).toBe(200);
    const after = await mine.request("/api/v1/async");
    expect(after.status).toBe(401);
    expect(after.headers.get("www-authenticate")).toContain("revoked");
    expect((await revokeAs(mine, mine.token)).status).toBe(200); // already revoked: still fine
    expect((await revokeAs(mine, "rct_unknown")).status).toBe(200);
  });

  it("/oauth/revoke errors are RFC 6749 JSON: invalid_request, invalid_client with the right challenge", async () => {
    const client = await rt.createClient();
    const revoke = (init: RequestInit) => rt.rawRequest("/oauth/revoke", { method: "POST", ...init });
    const expectError = async (response: Response, status: number, error: string, challenge: string | null) => {
      expect(response.status).toBe(status);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(response.headers.get("www-authenticate")).toBe(challenge);
      expect(((await response.json()) as OAuthErrorJson).error).toBe(error);
    };
    await expectError(await revoke({ body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret }) }), 400, "invalid_request", null);
    await expectError(await revoke({ body: new URLSearchParams({ token: client.token, client_id: client.clientId, client_secret: "wrong" }) }), 401, "invalid_client", null);
    const basic = Buffer.from(`${client.clientId}:wrong`).toString("base64");
    await expectError(await revoke({ headers: { authorization: `Basic ${basic}` }, body: new URLSearchParams({ token: client.token }) }), 401, "invalid_client", 'Basic realm="ricochet"');
    await expectError(await revoke({ body: new URLSearchParams({ token: client.token }) }), 401, "invalid_client", 'Basic realm="ricochet"');
    expect((await client.request("/api/v1/async")).status).toBe(200); // none of these revoked it
  });
});

describe("token expiry (injected clock)", () => {
  it("a token stops working when its lifetime ends", async () => {
    const clock = manualClock();
    const rt = await startTestRuntime({ roles: { api: true, worker: false }, clock, env: { TOKEN_TTL: "1h" } });
    try {
      const client = await rt.createClient();
      expect((await client.request("/api/v1/async")).status).toBe(200);
      clock.advance(3_600_000 - 1);
      expect((await client.request("/api/v1/async")).status).toBe(200);
      clock.advance(1);
      const expired = await client.request("/api/v1/async");
      expect(expired.status).toBe(401);
      expect(expired.headers.get("www-authenticate")).toContain("expired");
    } finally {
      await rt.stop();
    }
  });

  it("TOKEN_TTL=0 issues tokens that never expire, without expires_in (0 would read as expired)", async () => {
    const clock = manualClock();
    const rt = await startTestRuntime({ roles: { api: true, worker: false }, clock, env: { TOKEN_TTL: "0" } });
    try {
      const response = await rt.rawRequest("/oauth/token", {
        method: "POST",
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: rt.client.clientId, client_secret: rt.client.clientSecret }),
      });
      const body = (await response.json()) as TokenJson;
      expect(body).not.toHaveProperty("expires_in");
      clock.advance(10 * 365 * 86_400_000);
      expect((await rt.rawRequest("/api/v1/async", { headers: { authorization: `Bearer ${body.access_token}` } })).status).toBe(200);
    } finally {
      await rt.stop();
    }
  });
});

describe("revocation across API processes", () => {
  let a: TestRuntime;
  let b: TestRuntime;
  const bClock = manualClock();
  beforeAll(async () => {
    a = await startTestRuntime({ roles: { api: true, worker: false } });
    b = await startTestRuntime({ roles: { api: true, worker: false }, db: a.db, env: a.env, clock: bClock });
  });
  afterAll(async () => {
    await b.stop();
    await a.stop();
  });

  it("takes effect on the other instance at once through the broadcast", async () => {
    const client = await a.createClient();
    const onB = (path: string) => b.rawRequest(path, { headers: { authorization: `Bearer ${client.token}` } });
    expect((await onB("/api/v1/async")).status).toBe(200); // now cached on B
    const heardOnB = new Promise<void>((resolve) => b.pubsub.onTokenRevoked(() => resolve()));
    await a.services.admin.revokeTokens({ token: client.token });
    await heardOnB;
    expect((await onB("/api/v1/async")).status).toBe(401);
  });

  it("takes effect within TOKEN_CACHE_TTL (5 s) even if the broadcast is lost", async () => {
    const client = await a.createClient();
    const onB = (path: string) => b.rawRequest(path, { headers: { authorization: `Bearer ${client.token}` } });
    expect((await onB("/api/v1/async")).status).toBe(200); // cached on B
    // Revoke in the database only, as if B never heard the broadcast.
    const { tokensRepository } = await import("../src/db/tokens.js");
    const { digestToken } = await import("../src/auth/credentials.js");
    await tokensRepository(a.db.db).revokeByDigest(digestToken(client.token), new Date());
    expect((await onB("/api/v1/async")).status).toBe(200); // B still trusts its cache…
    bClock.advance(4_999);
    expect((await onB("/api/v1/async")).status).toBe(200);
    bClock.advance(1); // …until the bound
    expect((await onB("/api/v1/async")).status).toBe(401);
  });
});
