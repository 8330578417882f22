/**
 * This project's actions on the real Ricochet loop, embedded with createRicochet: a real Redis
 * (REDIS_URL, default 127.0.0.1:6379, under a prefix of its own), an embedded PGlite database in
 * a temporary directory, a local upstream page and a local callback receiver.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRicochet, type Ricochet } from "ricochet";

const ADMIN_TOKEN = "example-admin-token-0123456789abcdef";

describe("page-title and word-stats on Ricochet", { timeout: 60_000 }, () => {
  let ricochet: Ricochet;
  let upstream: Server;
  let base: string;
  let pageAnswers: number[] = [];
  const callbacks: { body: string }[] = [];
  let onCallback: () => void = () => {};
  const dataDir = mkdtempSync(join(tmpdir(), "greeter-"));
  let auth: Record<string, string>;

  beforeAll(async () => {
    // One server for the page (which may first answer 503) and for the callbacks.
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/hook") {
          callbacks.push({ body: Buffer.concat(chunks).toString("utf8") });
          res.writeHead(200).end();
          onCallback();
          return;
        }
        const status = pageAnswers.shift() ?? 200;
        res.writeHead(status, { "content-type": "text/html" }).end(status === 200 ? "<html><head><title> Hello, Ricochet </title></head></html>" : "busy");
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

    ricochet = createRicochet({
      actionModules: ["./actions/index.ts"],
      config: {
        BUILTIN_ACTIONS: "none",
        DATA_DIR: dataDir,
        // A prefix of its own (the caller's, if it names one, so it can remove the keys afterwards).
        QUEUE_PREFIX: process.env.QUEUE_PREFIX || `{greeter-${randomBytes(4).toString("hex")}}`,
        ADMIN_TOKEN,
        OUTBOUND_ALLOW: "127.0.0.1/32",
        LOG_LEVEL: "warn",
      },
    });
    await ricochet.start();
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
    const client = (await (await ricochet.app.request("/admin/v1/tenants/default/clients", { method: "POST", headers: admin, body: JSON.stringify({ name: "tests" }) })).json()) as { clientId: string; clientSecret: string };
    const token = (await (await ricochet.app.request("/oauth/token", { method: "POST", body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }) })).json()) as { access_token: string };
    auth = { authorization: `Bearer ${token.access_token}` };
  });
  afterAll(async () => {
    await ricochet?.stop();
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const submit = async (body: unknown) => {
    const response = await ricochet.app.request("/api/v1/async", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(response.status).toBe(202);
    return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
  };
  /** Long-polls until the request has finished. */
  const finished = async (id: string) => {
    for (;;) {
      const { asyncRequest } = (await (await ricochet.app.request(`/api/v1/async/${id}?wait=10`, { headers: auth })).json()) as { asyncRequest: { status: string; attempts: number } };
      if (["COMPLETED", "FAILED", "CANCELLED"].includes(asyncRequest.status)) return asyncRequest;
    }
  };
  const result = async (id: string) => (await (await ricochet.app.request(`/api/v1/async/${id}/result`, { headers: auth })).json()) as Record<string, unknown>;

  it("lists both actions with their schemas", async () => {
    const { actions } = (await (await ricochet.app.request("/api/v1/actions", { headers: auth })).json()) as { actions: { name: string; policy: { runIn: string } }[] };
    expect(actions.map((a) => [a.name, a.policy.runIn])).toEqual([
      ["page-title", "loop"],
      ["word-stats", "thread"],
    ]);
  });

  it("page-title: fetches the page, retries the upstream's 503, and calls back", async () => {
    pageAnswers = [503];
    const delivered = new Promise<void>((resolve) => (onCallback = resolve));
    const id = await submit({ action: "page-title", input: { url: `${base}/page` }, callbackUrl: `${base}/hook` });
    expect(await finished(id)).toMatchObject({ status: "COMPLETED", attempts: 2 });
    expect(await result(id)).toEqual({ page: { title: "Hello, Ricochet", status: 200 } });
    await delivered;
    expect(JSON.parse(callbacks[0]!.body)).toMatchObject({ asyncRequest: { id, status: "COMPLETED" }, page: { title: "Hello, Ricochet" } });
  });

  it("word-stats: counts in a worker thread", async () => {
    const id = await submit({ action: "word-stats", input: { text: "the cat and the hat and the bat", top: 2 } });
    expect(await finished(id)).toMatchObject({ status: "COMPLETED" });
    expect(await result(id)).toEqual({ stats: { words: 8, distinct: 5, top: [{ word: "the", count: 3 }, { word: "and", count: 2 }] } });
  });

  it("refuses bad input with a problem+json 422", async () => {
    const response = await ricochet.app.request("/api/v1/async", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ action: "page-title", input: { url: "not a url" } }) });
    expect(response.status).toBe(422);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
  });
});
