import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

describe("guessing client secrets is throttled", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { AUTH_FAILURES_PER_CLIENT: "4", AUTH_FAILURES_PER_ADDRESS: "9", AUTH_FAILURE_WINDOW: "1h" } });
  });
  afterAll(() => rt.stop());

  const token = (clientId: string, clientSecret: string) =>
    rt.rawRequest("/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret }),
    });

  it("refuses a client id with 429 and Retry-After after its failures, even with the right secret; a success clears the count", async () => {
    const client = await rt.createClient();
    expect((await token(client.clientId, "wrong")).status).toBe(401);
    expect((await token(client.clientId, client.clientSecret)).status).toBe(200); // clears
    for (let i = 0; i < 4; i++) expect((await token(client.clientId, `wrong-${i}`)).status).toBe(401);
    const refused = await token(client.clientId, client.clientSecret);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(3000);
    expect(((await refused.json()) as { code: string }).code).toBe("limit_exceeded");
    expect(rt.logs.text).toContain("client authentication throttled after repeated failures");
    // Another client is not affected by this one's count…
    const other = await rt.createClient();
    expect((await token(other.clientId, other.clientSecret)).status).toBe(200);
  });

  it("refuses a source address that keeps failing across client ids", async () => {
    // In process every caller shares one address; 5 failures were counted above, 9 allowed.
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await token(`cli_unknown${i}`, "x")).status);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[4]).toBe(429);
  });
});
