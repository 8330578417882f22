import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDIS_URL } from "./helpers/redis.js";
import { startTestRuntime, submit, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

describe("submit → run → result (API and worker in one runtime)", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime();
  });
  afterAll(() => rt.stop());

  it("answers 202 with Location, then runs QUEUED → RUNNING → COMPLETED with the result", async () => {
    const response = await rt.request("/api/v1/async", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ action: "echo", input: { data: { hello: "world" }, delayMs: 300, steps: 3 }, metadata: { orderId: "A-17" } }),
    });
    expect(response.status).toBe(202);
    const { asyncRequest } = (await response.json()) as { asyncRequest: { id: string; status: string; metadata: unknown } };
    expect(response.headers.get("location")).toBe(`/api/v1/async/${asyncRequest.id}`);
    expect(response.headers.get("x-request-id")).toBeTruthy();
    expect(asyncRequest.status).toBe("QUEUED");
    expect(asyncRequest.metadata).toEqual({ orderId: "A-17" });

    const running = await waitForStatus(rt, asyncRequest.id, "RUNNING");
    expect(running.dateStarted).not.toBeNull();
    expect(running.asyncResponse).toBeNull();
    const pending = await rt.request(`/api/v1/async/${asyncRequest.id}`);
    const pendingBody = (await pending.json()) as { asyncRequest: { status: string } };
    if (pendingBody.asyncRequest.status === "RUNNING") expect(pending.headers.get("retry-after")).toBe("1");

    const done = await waitForStatus(rt, asyncRequest.id, "COMPLETED");
    expect(done.progress).toBe(100);
    expect(done.dateFinished).not.toBeNull();
    expect(done.asyncResponse).toMatchObject({ errorCode: null, errorDesc: null, errorDetails: [], warnings: [] });
    const final = await rt.request(`/api/v1/async/${asyncRequest.id}`);
    expect(final.headers.get("retry-after")).toBeNull();

    const result = await rt.request(`/api/v1/async/${asyncRequest.id}/result`);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ echo: { data: { hello: "world" } } });
  });

  it("answers 409 for the result of a request that is not COMPLETED", async () => {
    const { id } = await submit(rt, { action: "echo", input: { delayMs: 60_000 } });
    await waitForStatus(rt, id, "RUNNING");
    const response = await rt.request(`/api/v1/async/${id}/result`);
    expect(response.status).toBe(409);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    await rt.request(`/api/v1/async/${id}`, { method: "DELETE" });
  });

  it("runs analyse and returns its statistics", async () => {
    const { id } = await submit(rt, { action: "analyse", input: { texts: ["Hello world. Hello world.", "Bye now."] } });
    await waitForStatus(rt, id, "COMPLETED");
    const body = (await (await rt.request(`/api/v1/async/${id}/result`)).json()) as { analysis: { totals: unknown } };
    expect(body.analysis.totals).toEqual({ words: 6, characters: 33, charactersWithoutSpaces: 29, segments: 3, repeatedSegments: 1 });
  });

  it("ends FAILED with errorCode, errorDesc and errorDetails when the action fails", async () => {
    const { id } = await submit(rt, {
      action: "echo",
      input: { fail: { code: "UPSTREAM_DOWN", message: "the upstream said no", details: [{ field: "x" }] } },
    });
    const failed = await waitForStatus(rt, id, "FAILED");
    expect(failed.asyncResponse).toMatchObject({
      errorCode: "UPSTREAM_DOWN",
      errorDesc: "the upstream said no",
      errorDetails: [{ field: "x" }],
    });
    expect(failed.dateFinished).not.toBeNull();
  });

  it("cancels a RUNNING request: the action's signal fires and it ends CANCELLED", async () => {
    const { id } = await submit(rt, { action: "echo", input: { delayMs: 120_000 } });
    await waitForStatus(rt, id, "RUNNING");
    expect(rt.workers!.running.has(id)).toBe(true);
    const jobFinished = new Promise<void>((resolve) => {
      const onDone = (job: { id?: string }) => {
        if (job.id !== id) return;
        rt.workers!.worker.off("completed", onDone);
        resolve();
      };
      rt.workers!.worker.on("completed", onDone);
    });
    const response = await rt.request(`/api/v1/async/${id}`, { method: "DELETE" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { asyncRequest: { status: string } }).asyncRequest.status).toBe("CANCELLED");
    // The job can only finish within the test's timeout, long before its 120 s delay, if the
    // AbortSignal reached the action.
    await jobFinished;
    expect(rt.workers!.running.has(id)).toBe(false);
    const final = await waitForStatus(rt, id, "CANCELLED");
    expect(final.asyncResponse?.errorCode).toBe("CANCELLED");
    const again = await rt.request(`/api/v1/async/${id}`, { method: "DELETE" });
    expect(again.status).toBe(409);
  });
});

describe("cancel a QUEUED request", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  it("removes its job and ends CANCELLED; a finished request answers 409", async () => {
    const { id } = await submit(rt, { action: "echo", input: {} });
    const queue = new Queue("jobs", { connection: { url: REDIS_URL }, prefix: rt.config.queuePrefix });
    expect(await (await queue.getJob(id))?.getState()).toBe("waiting");
    const response = await rt.request(`/api/v1/async/${id}`, { method: "DELETE" });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { asyncRequest: { status: string; dateFinished: string | null } };
    expect(body.asyncRequest.status).toBe("CANCELLED");
    expect(body.asyncRequest.dateFinished).not.toBeNull();
    expect(await queue.getJob(id)).toBeUndefined();
    expect((await rt.request(`/api/v1/async/${id}`, { method: "DELETE" })).status).toBe(409);
    await queue.close();
  });
});
