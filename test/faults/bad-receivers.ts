import { createServer as createHttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";

export type BadKind = "hang" | "trickle" | "ten-mb" | "close-mid-response" | "garbage";

/** The error class (src/infra/outbound/client.ts) each kind of bad receiver should leave on every attempt. */
export const EXPECTED_ERROR_CLASS: Record<BadKind, string> = {
  hang: "timeout",
  trickle: "timeout",
  "ten-mb": "http_status",
  "close-mid-response": "connection_reset",
  garbage: "network_error",
};

/** Calls `onRequest` once a whole HTTP/1.1 request (headers and Content-Length body) has arrived on the socket. */
function onEachRequest(socket: Socket, onRequest: () => void) {
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString("latin1");
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      buffer = buffer.subarray(end + 4 + length);
      onRequest();
    }
  });
}

/**
 * A receiver that misbehaves in one way, on its own port (its own origin):
 * - hang: reads the request and never answers;
 * - trickle: answers 200 with a 100 kB Content-Length, then one byte a second;
 * - ten-mb: answers 500 with a 10 MB body (only 16 KiB may be read);
 * - close-mid-response: a status line, headers and part of the body, then the connection closes;
 * - garbage: answers with bytes that are not HTTP, then closes.
 */
export async function startBadReceiver(kind: BadKind) {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  let bytesSent = 0;
  /** Requests received whose connection is still open: attempts the worker has in flight here. */
  let open = 0;
  const opened = (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
  };
  let server: Server;

  if (kind === "ten-mb") {
    const chunk = Buffer.alloc(64 * 1024, "x");
    const total = 10 * 1024 * 1024;
    server = createHttpServer((req, res) => {
      req.resume();
      req.on("end", () => {
        requests++;
        open++;
        res.once("close", () => open--);
        res.on("error", () => {});
        res.writeHead(500, { "content-type": "text/plain", "content-length": String(total) });
        let sent = 0;
        const pump = () => {
          while (sent < total && !res.destroyed) {
            sent += chunk.length;
            bytesSent += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          if (!res.destroyed) res.end();
        };
        pump();
      });
    });
  } else {
    server = createServer((socket) => {
      socket.on("error", () => {});
      onEachRequest(socket, () => {
        requests++;
        opened(socket);
        if (kind === "hang") return;
        if (kind === "trickle") {
          socket.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n");
          const timer = setInterval(() => {
            if (socket.destroyed) return clearInterval(timer);
            socket.write("x");
            bytesSent++;
          }, 1_000);
          timers.add(timer);
          socket.on("close", () => {
            clearInterval(timer);
            timers.delete(timer);
          });
          return;
        }
        if (kind === "close-mid-response") {
          socket.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\npartial answer, then");
          setImmediate(() => socket.destroy());
          return;
        }
        // garbage: not HTTP at all.
        socket.end(Buffer.from("\u0000\u00ff\u00feSSH-2.0-definitely-not-http\r\n\u0007\u0008garbage garbage\r\n\r\n", "latin1"));
      });
    });
  }
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    kind,
    port,
    url: `http://127.0.0.1:${port}/hook`,
    get requests() {
      return requests;
    },
    get bytesSent() {
      return bytesSent;
    },
    get open() {
      return open;
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type BadReceiver = Awaited<ReturnType<typeof startBadReceiver>>;
