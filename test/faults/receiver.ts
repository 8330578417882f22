import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Webhook } from "standardwebhooks";

/**
 * A webhook receiver in the test process that keeps the one log the counts need: for each
 * `webhook-id`, how many times it answered 200 (a response fully handed to the socket), when the
 * first 200 went out, and how many requests it was cut off in the middle of (the sender died).
 * It verifies every signature with the client's webhook secret (set once the client exists).
 * `holdMs` delays each answer, so that a worker killed while it waits dies mid-POST.
 */
export async function startCountingReceiver(options: { holdMs?: number } = {}) {
  const delivered = new Map<string, { count: number; firstAt: number }>();
  const firstByRequest = new Map<string, number>();
  const events = new EventEmitter<{ arrived: []; answered: [] }>();
  let webhook: Webhook | undefined;
  let holding = 0;
  let cut = 0;
  let badSignatures = 0;
  let arrived = 0;
  const sockets = new Set<Socket>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      arrived++;
      const body = Buffer.concat(chunks).toString("utf8");
      const id = String(req.headers["webhook-id"] ?? "");
      if (webhook) {
        try {
          webhook.verify(body, {
            "webhook-id": id,
            "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
            "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
          });
        } catch {
          badSignatures++;
          res.writeHead(400).end("bad signature");
          return;
        }
      }
      holding++;
      events.emit("arrived");
      let answered = false;
      res.on("finish", () => {
        answered = true;
        const seen = delivered.get(id);
        if (seen) seen.count++;
        else delivered.set(id, { count: 1, firstAt: Date.now() });
        const request = /^msg_([0-9a-f]{32})_\d+$/.exec(id)?.[1];
        if (request && !firstByRequest.has(request)) firstByRequest.set(request, Date.now());
        events.emit("answered");
      });
      res.on("close", () => {
        holding--;
        if (!answered) cut++;
      });
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      };
      if (options.holdMs) setTimeout(answer, options.holdMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    url: (path = "/hook") => `http://127.0.0.1:${port}${path}`,
    events,
    delivered,
    /** Verify signatures from now on with this client's `whsec_…` secret. */
    useSecret(secret: string) {
      webhook = new Webhook(secret);
    },
    /** Requests whose answer is being held right now. */
    get holding() {
      return holding;
    },
    /** Requests whose sender went away before the answer was written. */
    get cut() {
      return cut;
    },
    get arrived() {
      return arrived;
    },
    get badSignatures() {
      return badSignatures;
    },
    /** Distinct webhook-ids answered 200, and extra 200s beyond the first of each. */
    counts() {
      let duplicates = 0;
      for (const { count } of delivered.values()) duplicates += count - 1;
      return { delivered: delivered.size, duplicates };
    },
    /** When the first 200 for any series of this request went out, or undefined. */
    deliveredAt: (requestId: string): number | undefined => firstByRequest.get(requestId.replaceAll("-", "")),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type CountingReceiver = Awaited<ReturnType<typeof startCountingReceiver>>;
