import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { EventSource, type FetchLike } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/api/app.js";
import { serveApp } from "../src/api/http-server.js";
import type { EventStreamOptions } from "../src/api/routes/events.js";
import { startTestRuntime, submit, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

/** The API of a runtime over real HTTP, with its own event-stream options. */
async function serve(rt: TestRuntime, events: EventStreamOptions) {
  const app = createApp(rt.services, { bodyLimit: rt.config.bodyLimit, version: "test", events });
  const server = await new Promise<Server>((resolve) => {
    const s = serveApp(app.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  return {
    server,
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Served = Awaited<ReturnType<typeof serve>>;

type Seen = { id: string; connection: number; status: string; progress: number | null };
type Connection = { origin: string; lastEventId: string | null; status: number };

/**
 * A real EventSource on a request's events. Its fetch only adds the bearer token and picks the
 * API process for each connection (`originFor(n)`, as a load balancer would); reconnecting,
 * Last-Event-ID and stopping on 204 are the library's own.
 */
function follow(id: string, token: string, originFor: (connection: number) => string, onEvent?: (event: Seen, source: EventSource) => void) {
  const connections: Connection[] = [];
  const events: Seen[] = [];
  const fetchVia: FetchLike = async (url, init) => {
    const origin = originFor(connections.length);
    const target = new URL(new URL(url).pathname, origin);
    const response = await fetch(target, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
    connections.push({ origin, lastEventId: init.headers["Last-Event-ID"] ?? null, status: response.status });
    return response;
  };
  const source = new EventSource(`${originFor(0)}/api/v1/async/${id}/events`, { fetch: fetchVia });
  source.addEventListener("status", (message) => {
    const { asyncRequest } = JSON.parse(message.data) as { asyncRequest: { status: string; progress: number | null } };
    const event = { id: message.lastEventId, connection: connections.length - 1, status: asyncRequest.status, progress: asyncRequest.progress };
    events.push(event);
    onEvent?.(event, source);
  });
  // Settles when the library gives up for good: on a 204 (or any other refusal) it closes itself.
  const closed = new Promise<void>((resolve) =>
    source.addEventListener("error", () => {
      if (source.readyState === source.CLOSED) resolve();
    }),
  );
  return { source, events, connections, closed };
}

const ids = (events: Seen[]) => events.map((event) => Number(event.id));
const strictlyIncreasing = (values: number[]) => values.every((value, i) => i === 0 || value > values[i - 1]!);

describe("GET /api/v1/async/{id}/events with a real EventSource client", { timeout: 60_000 }, () => {
  let a: TestRuntime;
  let b: TestRuntime;
  let worker: TestRuntime;
  let apiA: Served;
  let apiB: Served;
  beforeAll(async () => {
    // Two API processes and a worker, sharing the database and the Redis prefix.
    a = await startTestRuntime({ roles: { api: true, worker: false } });
    b = await startTestRuntime({ roles: { api: true, worker: false }, db: a.db, env: a.env });
    worker = await startTestRuntime({ roles: { api: false, worker: true }, db: a.db, env: a.env });
    apiA = await serve(a, { heartbeatMs: 50, retryMs: 100 });
    apiB = await serve(b, { heartbeatMs: 50, retryMs: 100 });
  });
  afterAll(async () => {
    await apiA?.close();
    await apiB?.close();
    await worker?.stop();
    await b?.stop();
    await a?.stop();
  });

  it("streams status and progress changes in order, with growing ids; after the final state the reconnect gets 204 and EventSource closes", async () => {
    // Progress 25, 50, 75, 100, half a second apart.
    const { id } = await submit(a, { action: "echo", input: { data: "x", delayMs: 2000, steps: 4 } });
    const stream = follow(id, a.client.token, () => apiA.origin);
    await stream.closed;

    const { events, connections } = stream;
    expect(strictlyIncreasing(ids(events))).toBe(true);
    expect(events.at(-1)).toMatchObject({ id: "1999", status: "COMPLETED", progress: 100 });
    const running = events.filter((event) => event.status === "RUNNING");
    expect(running.map((event) => event.progress).filter((progress) => progress !== null && progress < 100)).toEqual([25, 50, 75]);
    expect(running.filter((event) => event.progress === 50).map((event) => event.id)).toEqual(["1052"]);
    // One stream, then the library's reconnection with the final id, refused with 204 for good.
    expect(connections).toEqual([
      { origin: apiA.origin, lastEventId: null, status: 200 },
      { origin: apiA.origin, lastEventId: "1999", status: 204 },
    ]);
    expect(stream.source.readyState).toBe(EventSource.CLOSED);
  });

  it("reconnects to another API process with Last-Event-ID and resumes there without repeating an event", async () => {
    // Progress every half second; API process A drops the stream after the first progress event.
    const { id } = await submit(a, { action: "echo", input: { delayMs: 3000, steps: 6 } });
    let dropped = false;
    const stream = follow(
      id,
      a.client.token,
      (connection) => (connection === 0 ? apiA.origin : apiB.origin),
      (event) => {
        if (!dropped && event.status === "RUNNING" && event.progress !== null) {
          dropped = true;
          apiA.server.closeAllConnections();
        }
      },
    );
    await stream.closed;

    const { events, connections } = stream;
    const onA = events.filter((event) => event.connection === 0);
    const onB = events.filter((event) => event.connection === 1);
    expect(onA.length).toBeGreaterThan(0);
    expect(onB.length).toBeGreaterThan(0);
    // The reconnection went to B and named the last event A sent; B sent only newer ones.
    expect(connections[1]).toEqual({ origin: apiB.origin, lastEventId: onA.at(-1)!.id, status: 200 });
    expect(Number(onB[0]!.id)).toBeGreaterThan(Number(onA.at(-1)!.id));
    expect(strictlyIncreasing(ids(events))).toBe(true);
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    expect(events.at(-1)).toMatchObject({ id: "1999", status: "COMPLETED" });
    expect(connections.at(-1)).toEqual({ origin: apiB.origin, lastEventId: "1999", status: 204 });
    expect(connections).toHaveLength(3);
    expect(stream.source.readyState).toBe(EventSource.CLOSED);
  });

  it("gives a request that already finished its final state once; the reconnect gets 204", async () => {
    const { id } = await submit(a, { action: "echo", input: { data: "done" } });
    await waitForStatus(a, id, "COMPLETED");
    const stream = follow(id, a.client.token, () => apiB.origin);
    await stream.closed;
    expect(stream.events.map(({ id: eventId, status }) => ({ eventId, status }))).toEqual([{ eventId: "1999", status: "COMPLETED" }]);
    expect(stream.connections.map((connection) => connection.status)).toEqual([200, 204]);
    expect(stream.source.readyState).toBe(EventSource.CLOSED);
  });

  it("sends a keep-alive comment at the configured interval while nothing changes", async () => {
    const { id } = await submit(a, { action: "echo", input: { delayMs: 60_000 } });
    const controller = new AbortController();
    try {
      const response = await fetch(`${apiA.origin}/api/v1/async/${id}/events`, { headers: { authorization: `Bearer ${a.client.token}` }, signal: controller.signal });
      expect(response.status).toBe(200);
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while ((text.match(/^: keep-alive\n\n/gm) ?? []).length < 3) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended: ${text}`);
        text += value;
      }
      expect(text).toMatch(/^retry: 100\n\n/);
      // The state (QUEUED, and RUNNING if the worker claimed it meanwhile), then only comments.
      expect(text.match(/^event: status$/gm)!.length).toBeLessThanOrEqual(2);
    } finally {
      controller.abort();
      await a.request(`/api/v1/async/${id}`, { method: "DELETE" });
    }
  });
});
