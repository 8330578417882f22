import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answer, startReceiver, type Receiver } from "./helpers/receiver.js";
import { freePort } from "./helpers/redis.js";
import { jsonBody, startTestRuntime, submit, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("the http action", () => {
  let rt: TestRuntime;
  let upstream: Receiver;
  let deadPort: number;
  beforeAll(async () => {
    upstream = await startReceiver();
    deadPort = await freePort();
    upstream.on("/api/items", (req, res) => {
      res.writeHead(201, { "content-type": "application/json", "x-upstream": "yes" }).end(JSON.stringify({ created: true, method: req.method }));
    });
    upstream.on("/api/text", answer(503, "try later", { "content-type": "text/plain" }));
    upstream.on("/api/nul", answer(200, "before\u0000after", { "content-type": "text/plain" }));
    rt = await startTestRuntime({
      env: { HTTP_ACTION_UPSTREAMS: `${upstream.url("/api/")},http://127.0.0.1:${deadPort}/`, HTTP_ACTION_TIMEOUT: "2s" },
    });
  });
  afterAll(async () => {
    await rt.stop();
    await upstream.close();
  });

  it("calls the allow-listed upstream and returns its status, headers and body", async () => {
    const { id } = await submit(rt, {
      action: "http",
      input: { url: upstream.url("/api/items"), method: "POST", query: { page: "2" }, headers: { "x-trace": "t-1" }, body: { name: "widget" } },
    });
    await waitForStatus(rt, id, "COMPLETED");
    const { response } = (await (await rt.request(`/api/v1/async/${id}/result`)).json()) as {
      response: { status: number; headers: Record<string, string>; body: unknown; truncated: boolean };
    };
    expect(response).toMatchObject({ status: 201, body: { created: true, method: "POST" }, truncated: false });
    expect(response.headers["x-upstream"]).toBe("yes");
    const [call] = upstream.requestsTo("/api/items");
    expect(call!.headers["x-trace"]).toBe("t-1");
    expect(call!.headers["content-type"]).toBe("application/json");
    expect(call!.headers["user-agent"]).toMatch(/^Ricochet\//);
    expect(JSON.parse(call!.body)).toEqual({ name: "widget" });
  });

  it("completes with the upstream's error status: the answer is the result", async () => {
    const { id } = await submit(rt, { action: "http", input: { url: upstream.url("/api/text") } });
    await waitForStatus(rt, id, "COMPLETED");
    const { response } = (await (await rt.request(`/api/v1/async/${id}/result`)).json()) as { response: { status: number; body: unknown } };
    expect(response).toMatchObject({ status: 503, body: "try later" });
  });

  it("fails the request (not the job, forever) when the upstream's answer cannot be stored", async () => {
    const { id } = await submit(rt, { action: "http", input: { url: upstream.url("/api/nul") } });
    const failed = await waitForStatus(rt, id, "FAILED");
    expect(failed.asyncResponse).toMatchObject({ errorCode: "RESULT_NOT_STORABLE" });
    expect(failed.asyncResponse!.errorDesc).toMatch(/result\.body .*U\+0000/);
  });

  it("fails the request when the upstream cannot be reached", async () => {
    const { id } = await submit(rt, { action: "http", input: { url: `http://127.0.0.1:${deadPort}/anything` } });
    const failed = await waitForStatus(rt, id, "FAILED");
    expect(failed.asyncResponse?.errorCode).toBe("UPSTREAM_CONNECTION_REFUSED");
  });

  it("refuses at submit a URL outside the allow-list, and hop-by-hop headers", async () => {
    for (const input of [
      { url: upstream.url("/elsewhere") },
      { url: "not a url" },
      { url: "http://169.254.169.254/latest/meta-data/" },
      { url: upstream.url("/api/items"), headers: { host: "evil" } },
    ]) {
      const response = await rt.request("/api/v1/async", jsonBody({ action: "http", input }));
      expect(response.status).toBe(422);
    }
  });

  it("is listed among the actions only where upstreams are configured", async () => {
    const body = (await (await rt.request("/api/v1/actions")).json()) as { actions: { name: string; resultKey: string }[] };
    expect(body.actions.find((a) => a.name === "http")?.resultKey).toBe("response");
  });
});
