import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Received = { path: string; at: number; headers: IncomingMessage["headers"]; body: string };
type Handler = (req: IncomingMessage, res: ServerResponse, count: number) => void;

/**
 * A real HTTP server on 127.0.0.1 that records what it receives. Each path has a behaviour
 * (set with `on`); the default answers 200. `waitFor` resolves on arrivals, not on timers.
 */
export async function startReceiver(host = "127.0.0.1") {
  const received: Received[] = [];
  const handlers = new Map<string, Handler>();
  const waiters = new Set<() => void>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const count = (counts.get(path) ?? 0) + 1;
      counts.set(path, count);
      received.push({ path, at: performance.now(), headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      for (const waiter of waiters) waiter();
      const handler = handlers.get(path) ?? ((_req, response) => response.writeHead(200).end("ok"));
      handler(req, res, count);
    });
  });
  const sockets = new Set<import("node:net").Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path: string) => `http://${host}:${port}${path}`,
    received,
    on(path: string, handler: Handler) {
      handlers.set(path, handler);
    },
    requestsTo: (path: string) => received.filter((r) => r.path === path),
    /** Resolves once `path` has received `count` requests. */
    waitFor(path: string, count: number, timeoutMs = 20_000): Promise<Received[]> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${path} received ${received.filter((r) => r.path === path).length} of ${count} requests`));
        }, timeoutMs);
        const check = () => {
          const got = received.filter((r) => r.path === path);
          if (got.length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(got);
          }
        };
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Answers with this status (and a Location for redirects). */
export const answer =
  (status: number, body = "", headers: Record<string, string> = {}): Handler =>
  (_req, res) =>
    res.writeHead(status, headers).end(status === 204 || status === 304 ? undefined : body);
