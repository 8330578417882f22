import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveApp } from "../src/api/http-server.js";
import { startTestRuntime, type TestClient, type TestRuntime } from "./helpers/runtime.js";

/**
 * A standard, spec-strict OAuth 2.0 client library (oauth4webapi) against the real endpoints over
 * real HTTP: what a client of ours would run, not our own reading of the RFCs.
 */
const insecure = { [oauth.allowInsecureRequests]: true }; // plain HTTP on the loopback

async function serveOverHttp(rt: TestRuntime) {
  const server = await new Promise<Server>((resolve) => {
    const s = serveApp(rt.app!.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const as: oauth.AuthorizationServer = { issuer: origin, token_endpoint: `${origin}/oauth/token`, revocation_endpoint: `${origin}/oauth/revoke` };
  return {
    origin,
    as,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Served = Awaited<ReturnType<typeof serveOverHttp>>;

const authMethods = {
  client_secret_basic: oauth.ClientSecretBasic,
  client_secret_post: oauth.ClientSecretPost,
};

async function clientCredentials(served: Served, client: { clientId: string }, auth: oauth.ClientAuth, scope?: string) {
  const response = await oauth.clientCredentialsGrantRequest(served.as, { client_id: client.clientId }, auth, new URLSearchParams(scope ? { scope } : {}), insecure);
  return oauth.processClientCredentialsResponse(served.as, { client_id: client.clientId }, response);
}

const listRequests = (served: Served, token: string) => oauth.protectedResourceRequest(token, "GET", new URL(`${served.origin}/api/v1/async`), undefined, undefined, insecure);

/** What the library throws, for assertions on its kind. */
async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected the library to throw"),
    (error: unknown) => error,
  );
}

describe("oauth4webapi against /oauth/token and /oauth/revoke", () => {
  let rt: TestRuntime;
  let served: Served;
  let client: TestClient;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
    served = await serveOverHttp(rt);
    client = await rt.createClient();
  });
  afterAll(async () => {
    await served?.close();
    await rt?.stop();
  });

  it.each(Object.entries(authMethods))("client credentials with %s: a token the API accepts", async (_method, auth) => {
    const token = await clientCredentials(served, client, auth(client.clientSecret), "read");
    expect(token).toMatchObject({ token_type: "bearer", expires_in: 86_400, scope: "read" });
    const response = await listRequests(served, token.access_token);
    expect(response.status).toBe(200);
  });

  it("a wrong secret in the body: the library surfaces invalid_client from the body", async () => {
    const error = await thrown(clientCredentials(served, client, oauth.ClientSecretPost("cs_wrong")));
    expect(error).toBeInstanceOf(oauth.ResponseBodyError);
    expect(error).toMatchObject({ status: 401, error: "invalid_client" });
  });

  it("a wrong secret over HTTP Basic: the library surfaces the Basic challenge, and the body says invalid_client", async () => {
    const error = await thrown(clientCredentials(served, client, oauth.ClientSecretBasic("cs_wrong")));
    // RFC 6749 §5.2: a client that used Basic gets a Basic challenge; oauth4webapi reports any
    // challenge before the body, so the answer must not name Bearer (a resource-server error).
    expect(error).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = error as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause.map((c) => c.scheme)).toEqual(["basic"]);
    expect(await challenge.response.json()).toMatchObject({ error: "invalid_client" });
  });

  it.each(Object.entries(authMethods))("revocation (RFC 7009) with %s: afterwards the API refuses the token", async (_method, auth) => {
    const { access_token } = await clientCredentials(served, client, auth(client.clientSecret));
    expect((await listRequests(served, access_token)).status).toBe(200);
    const response = await oauth.revocationRequest(served.as, { client_id: client.clientId }, auth(client.clientSecret), access_token, insecure);
    await expect(oauth.processRevocationResponse(response)).resolves.toBeUndefined();
    const refused = await thrown(listRequests(served, access_token));
    expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = refused as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]).toMatchObject({ scheme: "bearer", parameters: { error: "invalid_token" } });
  });

  it("revoking another client's token: the library surfaces unauthorized_client, and the token still works", async () => {
    const other = await rt.createClient();
    const response = await oauth.revocationRequest(served.as, { client_id: client.clientId }, oauth.ClientSecretPost(client.clientSecret), other.token, insecure);
    const error = await thrown(oauth.processRevocationResponse(response));
    expect(error).toBeInstanceOf(oauth.ResponseBodyError);
    expect(error).toMatchObject({ status: 400, error: "unauthorized_client" });
    expect((await listRequests(served, other.token)).status).toBe(200);
  });
});

describe("oauth4webapi with TOKEN_TTL=0", () => {
  let rt: TestRuntime;
  let served: Served;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { TOKEN_TTL: "0" } });
    served = await serveOverHttp(rt);
  });
  afterAll(async () => {
    await served?.close();
    await rt?.stop();
  });

  it("a token that never expires comes without expires_in; the library takes it and the API accepts it", async () => {
    const token = await clientCredentials(served, rt.client, oauth.ClientSecretBasic(rt.client.clientSecret));
    expect(token).not.toHaveProperty("expires_in");
    expect(token).toMatchObject({ token_type: "bearer", scope: "read write" });
    expect((await listRequests(served, token.access_token)).status).toBe(200);
  });
});
