/**
 * /docs in a real browser (headless Debian chromium via playwright-core), as a developer uses
 * it: Swagger UI loads /openapi.json from the service, gets a token through its Authorize
 * dialog (OAuth2 client credentials of a client made through the admin API), and submits a
 * request with "Try it out". Chromium must be installed (CI: apt-get install -y chromium): a
 * missing browser fails this file, it is not skipped.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveApp } from "../src/api/http-server.js";
import { launchBrowser, type TestBrowser } from "./helpers/browser.js";
import { startTestRuntime, TEST_ADMIN_TOKEN, type TestRuntime } from "./helpers/runtime.js";

let rt: TestRuntime;
let server: Server;
let baseUrl: string;
let browser: TestBrowser;

beforeAll(async () => {
  rt = await startTestRuntime({ roles: { api: true, worker: true } });
  const app = rt.app!;
  server = await new Promise<Server>((resolve) => {
    const listening: Server = serveApp(app.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(listening));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await rt?.stop();
});

/** A tenant and a client, made over HTTP with the admin API, as an operator would. */
async function createClient(): Promise<{ clientId: string; clientSecret: string }> {
  const headers = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" };
  const tenantId = `docs-${crypto.randomUUID().slice(0, 8)}`;
  const tenant = await fetch(`${baseUrl}/admin/v1/tenants`, { method: "POST", headers, body: JSON.stringify({ id: tenantId }) });
  expect(tenant.status).toBe(201);
  const client = await fetch(`${baseUrl}/admin/v1/tenants/${tenantId}/clients`, { method: "POST", headers, body: JSON.stringify({ name: "swagger ui" }) });
  expect(client.status).toBe(201);
  return (await client.json()) as { clientId: string; clientSecret: string };
}

/** Fails with what the page said, rather than a bare timeout, when Swagger UI shows an error. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // Chromium asks every site for /favicon.ico; there is none.
    if (message.type() === "error" && !message.location().url.endsWith("/favicon.ico")) problems.push(`console: ${message.text()}`);
  });
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
  return problems;
}

describe("/docs in a browser", () => {
  it("authorizes with client credentials and submits a request with Try it out", async () => {
    const { clientId, clientSecret } = await createClient();
    const page = await browser.context.newPage();
    page.setDefaultTimeout(10_000);
    const problems = watch(page);
    const outside: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(baseUrl) && !request.url().startsWith("data:")) outside.push(request.url());
    });
    try {
      await page.goto(`${baseUrl}/docs`);
      await page.locator(".information-container .title", { hasText: "Ricochet" }).waitFor();

      // Authorize: the OAuth2 scheme's form in the dialog; Swagger UI asks /oauth/token itself.
      await page.locator(".auth-wrapper .authorize").click();
      const oauth = page.locator(".auth-container", { hasText: "clientCredentials" });
      await oauth.getByLabel("client_id:").fill(clientId);
      await oauth.getByLabel("client_secret:").fill(clientSecret);
      const [tokenAnswer] = await Promise.all([
        page.waitForResponse((response) => response.url() === `${baseUrl}/oauth/token`),
        oauth.locator("button.authorize").click(),
      ]);
      expect(tokenAnswer.status()).toBe(200);
      await oauth.locator("button", { hasText: "Logout" }).waitFor();
      await page.locator(".dialog-ux .modal-ux-header .close-modal").click();

      // Try it out: the submit operation, with an echo body, executed from the page.
      const submit = page.locator("#operations-Async_requests-createAsyncRequest");
      await submit.locator(".opblock-summary").first().click();
      await submit.locator("button.try-out__btn").click();
      await submit.locator("textarea.body-param__text").fill(JSON.stringify({ action: "echo", input: { data: { from: "swagger-ui" } } }));
      const [answer] = await Promise.all([
        page.waitForResponse((response) => response.url() === `${baseUrl}/api/v1/async` && response.request().method() === "POST"),
        submit.locator("button.execute").click(),
      ]);
      expect(answer.request().headers().authorization).toMatch(/^Bearer rct_/);

      // What the page shows: the live response's status and its body.
      const live = submit.locator(".live-responses-table .response");
      await expect.poll(() => live.locator(".response-col_status").first().textContent(), { timeout: 10_000 }).toContain("202");
      const shown = await live.locator(".response-col_description .microlight").first().textContent();
      const { asyncRequest } = JSON.parse(shown ?? "{}") as { asyncRequest: { id: string; action: string } };
      expect(asyncRequest.action).toBe("echo");
      expect(await submit.locator(".request-url pre").textContent()).toBe(`${baseUrl}/api/v1/async`);

      // The request is real, and made by the client the browser authorized as.
      const token = await fetch(`${baseUrl}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret }).toString(),
      });
      const { access_token } = (await token.json()) as { access_token: string };
      const stored = await fetch(`${baseUrl}/api/v1/async/${asyncRequest.id}`, { headers: { authorization: `Bearer ${access_token}` } });
      expect(((await stored.json()) as { asyncRequest: { createdBy: { clientId: string } } }).asyncRequest.createdBy.clientId).toBe(clientId);
      expect(problems).toEqual([]);
      expect(outside).toEqual([]);
    } catch (error) {
      // A step that timed out says little by itself: add what the page reported.
      if (error instanceof Error) error.message += `\npage problems: ${JSON.stringify(problems)}\nrequests elsewhere: ${JSON.stringify(outside)}`;
      throw error;
    } finally {
      await page.close();
    }
  });
});
