import type { Server } from "node:http";
import type { Socket } from "node:net";
import { serve } from "@hono/node-server";
import type { ErrorCode } from "../shared/errors.js";
import { problemBody } from "./problem.js";

/** What Node's HTTP parser refuses before any handler runs, as the problem it is. */
const CLIENT_ERRORS: Record<string, { code: ErrorCode; detail: string }> = {
  HPE_HEADER_OVERFLOW: { code: "header_fields_too_large", detail: "The request's headers are too large" },
  ERR_HTTP_REQUEST_TIMEOUT: { code: "request_timeout", detail: "The request did not arrive in time" },
};
const REASONS: Partial<Record<number, string>> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };

/**
 * Serves a Hono app. Errors that Node's HTTP server answers itself (a malformed request line or
 * header, headers too large, a request that never completes) get a problem+json body too, and
 * close the connection: the parser cannot tell where the next request would start.
 */
export function serveApp(fetch: (request: Request) => Response | Promise<Response>, options: { port: number | undefined; hostname: string }, onListen?: (info: { port: number }) => void): Server {
  const server = serve({ fetch, port: options.port, hostname: options.hostname }, onListen) as Server;
  server.on("clientError", (error: Error & { code?: string }, socket: Socket) => {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const { code, detail } = CLIENT_ERRORS[error.code ?? ""] ?? { code: "bad_request" as const, detail: "The request is not valid HTTP/1.1" };
    const problem = problemBody(code, detail, "", "");
    const body = JSON.stringify(problem);
    socket.end(
      `HTTP/1.1 ${problem.status} ${REASONS[problem.status] ?? "Bad Request"}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
