import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { toAsyncRequest } from "../../shared/async-request.js";
import { isFinal } from "../../shared/status.js";
import type { AppEnv } from "../env.js";
import { IdParamSchema, problemResponses } from "../schemas.js";

const HEARTBEAT_MS = 15_000;

const events = createRoute({
  method: "get",
  path: "/api/v1/async/{id}/events",
  operationId: "streamAsyncRequestEvents",
  tags: ["Async requests"],
  summary: "Server-Sent Events: the request now, then at each status change; ends with the final state",
  description: "Each event is `event: status` with `data: {asyncRequest}`. Comments every 15 s keep idle connections open.",
  request: { params: IdParamSchema },
  responses: { 200: { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } }, ...problemResponses(401, 403, 404) },
});

/**
 * Push without a callback URL. Status changes come over Redis pub/sub from whichever worker
 * makes them; each one is re-read from the database, so the stream shows what GET shows.
 */
export function registerEventRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(events, async (c) => {
    const { asyncRequests } = c.var.services;
    const caller = c.var.caller;
    const id = c.req.valid("param").id;
    const first = await asyncRequests.get(caller, id); // 404 before the stream starts
    return streamSSE(c, async (stream) => {
      let sent = 0;
      let lastStatus: string | undefined;
      let wake: () => void = () => {};
      const unsubscribe = c.var.services.subscribeStatus(id, () => wake());
      const closed = new Promise<void>((resolve) => stream.onAbort(resolve));
      const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), HEARTBEAT_MS);
      try {
        let row = first;
        for (;;) {
          if (row.status !== lastStatus) {
            lastStatus = row.status;
            await stream.writeSSE({ event: "status", id: String(++sent), data: JSON.stringify({ asyncRequest: toAsyncRequest(row) }) });
          }
          if (isFinal(row.status) || stream.aborted) break;
          const changed = new Promise<void>((resolve) => (wake = resolve));
          // Re-read after subscribing, so a change between the first read and now is not missed.
          row = await asyncRequests.get(caller, id);
          if (row.status !== lastStatus) continue;
          await Promise.race([changed, closed]);
          if (stream.aborted) break;
          row = await asyncRequests.get(caller, id);
        }
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
      }
    });
  });
}
