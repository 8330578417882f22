import { connect } from "node:net";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveApp } from "../src/api/http-server.js";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

/** Sends raw bytes and reads until the server closes the connection. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString("utf8")));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });
}

const parse = (answer: string) => {
  const [head, body] = answer.split("\r\n\r\n");
  return { status: Number(head!.split(" ")[1]), head: head!.toLowerCase(), body: JSON.parse(body!) as { code: string; status: number; type: string } };
};

describe("errors that Node's HTTP server answers itself", () => {
  let rt: TestRuntime;
  let server: Server;
  let port: number;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false }, env: { BODY_LIMIT: "1kb" } });
    server = await new Promise<Server>((resolve) => {
      const s = serveApp(rt.app!.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rt.stop();
  });

  it("a malformed request line: 400 problem+json, connection closed", async () => {
    const answer = parse(await raw(port, "GARBAGE\r\n\r\n"));
    expect(answer.status).toBe(400);
    expect(answer.head).toContain("content-type: application/problem+json");
    expect(answer.head).toContain("connection: close");
    expect(answer.body).toMatchObject({ status: 400, code: "bad_request" });
  });

  it("headers too large: 431 problem+json", async () => {
    const answer = parse(await raw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`));
    expect(answer.status).toBe(431);
    expect(answer.body).toMatchObject({ status: 431, code: "header_fields_too_large" });
  });

  it("413 says Connection: close, so a keep-alive client's next request goes on a new connection", async () => {
    const big = await request(`http://127.0.0.1:${port}/api/v1/async`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${rt.client.token}` },
      body: JSON.stringify({ action: "echo", input: { data: "x".repeat(4096) } }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.headers.connection).toBe("close");
    expect(((await big.body.json()) as { code: string }).code).toBe("payload_too_large");
    // undici's global pool honours Connection: close; this request must not fail with a reset.
    const next = await request(`http://127.0.0.1:${port}/healthz`);
    expect(next.statusCode).toBe(200);
    await next.body.dump();
  });
});
