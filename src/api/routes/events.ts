import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import type { AsyncRequestRow } from "../../db/schema.js";
import { toAsyncRequest } from "../../shared/async-request.js";
import { isFinal } from "../../shared/status.js";
import type { AppEnv } from "../env.js";
import { headers, IdParamSchema, oauth2, problemResponses } from "../schemas.js";

export type EventStreamOptions = {
  /** How often an idle stream gets a `: keep-alive` comment (proxies close silent connections). */
  heartbeatMs?: number;
  /** Sent as the stream's `retry:` field, the client's reconnection delay; unset: the client's default. */
  retryMs?: number;
};

const HEARTBEAT_MS = 15_000;

const events = createRoute({
  method: "get",
  path: "/api/v1/async/{id}/events",
  operationId: "streamAsyncRequestEvents",
  tags: ["Async requests"],
  security: oauth2("read"),
  summary: "Server-Sent Events: the request now, then at each status or progress change; ends with the final state",
  description:
    "Each event is `event: status` with `data: {asyncRequest}` and an `id` that grows with the request's state (run, progress, final), the same from every API process. " +
    "A reconnection with `Last-Event-ID` gets only newer states; one whose client has seen the final state answers 204, so EventSource stops. " +
    "A `: keep-alive` comment every 15 s keeps idle connections open.",
  request: { params: IdParamSchema },
  responses: {
    200: {
      description: "The event stream: `event: status`, `id: <state>`, `data: {\"asyncRequest\": …}` per state",
      headers: headers("Cache-Control"),
      content: { "text/event-stream": { schema: { type: "string" } } },
    },
    204: { description: "The client has seen the final state (Last-Event-ID): nothing more will come" },
    ...problemResponses(401, 403, 404, 503),
  },
});

/**
 * The event id of a state of a request: `runs × 1000 + stage`, where `runs` counts the times it
 * was claimed and stage is 1 with no progress yet, progress + 2 (2–102) with some, 999 once
 * final. Derived from the row, not counted per connection, so every API process gives a state
 * the same id and a reconnection can go to any of them; and it grows along the state machine:
 * QUEUED 1; RUNNING 1001, then 1002–1102 with progress; a re-run after a crash 2001…; final
 * `runs`999 (999 if cancelled while queued). No schema change or per-change write is needed.
 * A stream sends a state only if its id is greater than the last one sent (or Last-Event-ID), so
 * ids never go back even where progress does (a re-run reports from 0 again within one run id
 * range): such progress shows once it passes what was shown.
 */
export function eventIdOf(row: Pick<AsyncRequestRow, "runs" | "status" | "progress">): number {
  const stage = isFinal(row.status) ? 999 : row.progress === null ? 1 : Math.min(100, Math.max(0, row.progress)) + 2;
  return row.runs * 1000 + stage;
}

/** A Last-Event-ID this stream could have sent: a non-negative integer; anything else is ignored. */
function parseLastEventId(header: string | undefined): number | undefined {
  const value = header?.trim();
  return value && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

/**
 * Push without a callback URL. Status and progress changes come over Redis pub/sub from
 * whichever worker makes them; each one is re-read from the database, so the stream shows what
 * GET shows. A stream is a series of states, not a log: a client that reconnects gets the
 * current state (if newer than what it saw), not every state it missed.
 */
export function registerEventRoutes(app: OpenAPIHono<AppEnv>, options: EventStreamOptions = {}) {
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  app.openapi(events, async (c) => {
    const { asyncRequests, subscribeStatus, logger } = c.get("services");
    const caller = c.get("caller");
    const id = c.req.valid("param").id;
    const lastEventId = parseLastEventId(c.req.header("last-event-id"));

    // Listening before the first read (a local listener, no round trip): no change is missed.
    let changed = false;
    let wake = () => {};
    const unsubscribe = subscribeStatus(id, () => {
      changed = true;
      wake();
    });
    let first: AsyncRequestRow;
    try {
      first = await asyncRequests.get(caller, id); // 404 before the stream starts
    } catch (error) {
      unsubscribe();
      throw error;
    }
    if (isFinal(first.status) && lastEventId !== undefined && eventIdOf(first) <= lastEventId) {
      unsubscribe();
      return c.body(null, 204);
    }

    return streamSSE(c, async (stream) => {
      stream.onAbort(() => wake());
      // The process is shutting down: end the stream; the client reconnects (to another
      // process) with Last-Event-ID and loses nothing.
      const { shuttingDown } = c.get("services");
      const onShutdown = () => wake();
      shuttingDown.addEventListener("abort", onShutdown, { once: true });
      const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), heartbeatMs);
      let sent = lastEventId;
      try {
        if (options.retryMs !== undefined) await stream.write(`retry: ${options.retryMs}\n\n`);
        let row = first;
        for (;;) {
          const eventId = eventIdOf(row);
          if (sent === undefined || eventId > sent) {
            sent = eventId;
            await stream.writeSSE({ event: "status", id: String(eventId), data: JSON.stringify({ asyncRequest: toAsyncRequest(row) }) });
          }
          if (isFinal(row.status) || stream.aborted || shuttingDown.aborted) break;
          if (!changed) await new Promise<void>((resolve) => (wake = resolve));
          if (stream.aborted || shuttingDown.aborted) break;
          changed = false; // before the read: a change during it is read next time round
          row = await asyncRequests.get(caller, id);
        }
      } catch (error) {
        // The stream just ends; the client reconnects with Last-Event-ID and loses nothing.
        logger.warn({ err: error, asyncRequestId: id, requestId: c.get("requestId") }, "an event stream ended early");
      } finally {
        clearInterval(heartbeat);
        shuttingDown.removeEventListener("abort", onShutdown);
        unsubscribe();
      }
    });
  });
}
