import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveApp } from "../src/api/http-server.js";
import { launchBrowser, type TestBrowser } from "./helpers/browser.js";
import { REDIS_URL } from "./helpers/redis.js";
import { startTestRuntime, TEST_ADMIN_TOKEN, type TestRuntime } from "./helpers/runtime.js";

/** The bull-board dashboard in a real browser (Debian chromium), over real HTTP, with Basic credentials. */
describe("queue dashboard in a browser", () => {
  let rt: TestRuntime;
  let server: Server;
  let origin: string;
  let browser: TestBrowser | undefined;

  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
    server = await new Promise<Server>((resolve) => {
      const s = serveApp(rt.app!.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(s));
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await rt?.stop();
  });

  it("lists the jobs and callbacks queues, opens one to show its delayed job, and pauses the other", async () => {
    const jobId = `${randomUUID()}.1`;
    const callbacks = new Queue("callbacks", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    await callbacks.add("deliver", { requestId: randomUUID(), series: 1, offset: 0 }, { jobId, delay: 3_600_000 });
    await callbacks.close();
    // Launched in the test, not in a hook: without chromium the test fails rather than being skipped.
    browser = await launchBrowser({ httpCredentials: { username: "operator", password: TEST_ADMIN_TOKEN } });
    // Nothing may leave for another host (fonts, CDNs, telemetry): recorded, then refused.
    const elsewhere: string[] = [];
    await browser.context.route("**/*", (route) => {
      if (new URL(route.request().url()).origin === origin) return route.continue();
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const errors: string[] = [];
    const { page } = browser;
    page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    page.on("response", (response) => {
      if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
    });

    const response = await page.goto(`${origin}/admin/queues`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe("Ricochet queues");
    const menu = page.locator("#bull-board-sidebar");
    // The page is rendered by bull-board's scripts: these links exist only once they ran.
    await menu.getByRole("link", { name: "jobs", exact: true }).waitFor();
    await menu.getByRole("link", { name: "callbacks", exact: true }).waitFor();

    await menu.getByRole("link", { name: "callbacks", exact: true }).click();
    await page.waitForURL(`${origin}/admin/queues/queue/callbacks`);
    await page.getByText(`Redis keys ${rt.config.queuePrefix}:callbacks:*`).waitFor();
    await page.getByText(jobId).waitFor();

    // An action from the page (its own PUT, with the Basic credentials, from the same origin).
    await menu.getByRole("link", { name: "jobs", exact: true }).click();
    await page.waitForURL(`${origin}/admin/queues/queue/jobs`);
    await page.locator("main button").last().click(); // the queue's actions menu
    await page.getByRole("menuitem", { name: "Pause" }).click();
    const paused = page.waitForResponse((answer) => answer.request().method() === "PUT");
    await page.getByRole("button", { name: "Confirm" }).click();
    expect((await paused).url()).toBe(`${origin}/admin/queues/api/queues/jobs/pause`);
    expect((await paused).status()).toBe(200);
    const listed = await rt.rawRequest("/admin/api/queues", { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    const { queues } = (await listed.json()) as { queues: { name: string; paused: boolean }[] };
    expect(queues.find((queue) => queue.name === "jobs")?.paused).toBe(true);

    expect(errors).toEqual([]);
    expect(elsewhere).toEqual([]);
  });
});
