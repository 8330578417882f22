import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnRicochet, type RicochetProcess } from "./helpers/process.js";
import { jsonBody, startTestRuntime, submit, type TestRuntime } from "./helpers/runtime.js";

type SseEvent = { event: string; id: string; data: { asyncRequest: { status: string; progress: number | null } } };

/** Reads a text/event-stream to its end, event by event. */
async function readEvents(response: Response, onEvent?: (event: SseEvent) => void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const fields = Object.fromEntries(
        block
          .split("\n")
          .filter((line) => line && !line.startsWith(":"))
          .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trimStart()]),
      );
      if (!fields.event) continue;
      const event = { event: fields.event, id: fields.id, data: JSON.parse(fields.data ?? "null") } as SseEvent;
      events.push(event);
      onEvent?.(event);
    }
  }
  return events;
}

describe("GET /api/v1/async/{id}/events", { timeout: 60_000 }, () => {
  let api: TestRuntime;
  let worker: RicochetProcess | undefined;
  beforeAll(async () => {
    api = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await worker?.kill("SIGKILL");
    await api.stop();
  });

  it("streams every status change made by a worker in another process, and ends with the final state", async () => {
    const { id } = await submit(api, { action: "echo", input: { data: "streamed", delayMs: 300 } });
    const response = await api.request(`/api/v1/async/${id}/events`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = readEvents(response, (event) => {
      // Start the worker once the stream has shown QUEUED: every transition happens while we watch.
      if (event.data.asyncRequest.status === "QUEUED") worker = spawnRicochet("worker", api.env);
    });
    const seen = await events;
    expect(seen.map((e) => e.data.asyncRequest.status)).toEqual(["QUEUED", "RUNNING", "COMPLETED"]);
    expect(seen.map((e) => e.event)).toEqual(["status", "status", "status"]);
    // Ids derive from the state (runs × 1000 + stage), so every API process numbers alike.
    expect(seen.map((e) => e.id)).toEqual(["1", "1001", "1999"]);
    expect(seen.at(-1)!.data.asyncRequest.progress).toBe(100);
    await worker?.kill("SIGKILL"); // the next tests need requests to stay QUEUED
  });

  it("ends at once for a finished request, and is 404 for another tenant", async () => {
    const queued = await submit(api, { action: "echo", input: {} });
    await api.request(`/api/v1/async/${queued.id}`, { method: "DELETE" });
    const events = await readEvents(await api.request(`/api/v1/async/${queued.id}/events`));
    expect(events.map((e) => e.data.asyncRequest.status)).toEqual(["CANCELLED"]);
    expect(events.map((e) => e.id)).toEqual(["999"]); // cancelled before any run
    const other = await api.createClient();
    expect((await other.request(`/api/v1/async/${queued.id}/events`)).status).toBe(404);
  });

  it("shows a cancellation made through another API process", async () => {
    const second = await startTestRuntime({ roles: { api: true, worker: false }, db: api.db, env: api.env });
    try {
      const { id } = await submit(api, { action: "echo", input: {} });
      const response = await api.request(`/api/v1/async/${id}/events`);
      const events = readEvents(response, (event) => {
        if (event.data.asyncRequest.status === "QUEUED") void second.rawRequest(`/api/v1/async/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${api.client.token}` } });
      });
      expect((await events).map((e) => e.data.asyncRequest.status)).toEqual(["QUEUED", "CANCELLED"]);
    } finally {
      await second.stop();
    }
  });

  it("Last-Event-ID: 204 once the final state was seen; an older id gets it once; other values are ignored", async () => {
    const { id } = await submit(api, { action: "echo", input: {} });
    await api.request(`/api/v1/async/${id}`, { method: "DELETE" });
    const from = (lastEventId: string) => api.request(`/api/v1/async/${id}/events`, { headers: { "last-event-id": lastEventId } });
    for (const seen of ["999", "5000"]) {
      const done = await from(seen);
      expect(done.status).toBe(204);
      expect(await done.text()).toBe("");
    }
    for (const older of ["1", "998", "not-a-number", "-1", ""]) {
      const response = await from(older);
      expect(response.status).toBe(200);
      expect((await readEvents(response)).map((e) => [e.id, e.data.asyncRequest.status])).toEqual([["999", "CANCELLED"]]);
    }
  });

  it("Last-Event-ID of the current state: nothing is repeated, the next change comes", async () => {
    const { id } = await submit(api, { action: "echo", input: {} }); // QUEUED (id 1): no worker runs
    const response = await api.request(`/api/v1/async/${id}/events`, { headers: { "last-event-id": "1" } });
    expect(response.status).toBe(200);
    const events = readEvents(response);
    await api.request(`/api/v1/async/${id}`, { method: "DELETE" });
    expect((await events).map((e) => [e.id, e.data.asyncRequest.status])).toEqual([["999", "CANCELLED"]]);
  });

  it("needs the read scope", async () => {
    const writer = await api.createClient({ tokenScope: "write" });
    const response = await writer.request("/api/v1/async", jsonBody({ action: "echo", input: {} }));
    const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
    expect((await writer.request(`/api/v1/async/${id}/events`)).status).toBe(403);
  });
});
