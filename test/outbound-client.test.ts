import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAddressPolicy } from "../src/infra/outbound/address-policy.js";
import { createOutboundClient, OutboundError } from "../src/infra/outbound/client.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";

/** The one deadline of a call covers the connect, the headers and the whole body. */
describe("the outbound client's deadline", () => {
  let receiver: Receiver;
  const client = createOutboundClient({ policy: createAddressPolicy(["127.0.0.1/32"]), userAgent: "test" });
  const trickles = new Set<NodeJS.Timeout>();
  beforeAll(async () => {
    receiver = await startReceiver();
    // Headers at once, then a byte every 20 ms for ever: neither undici's headers timeout nor its
    // body timeout (both the call's timeout) ever fires, only the call's own deadline can.
    receiver.on("/trickle", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      const timer = setInterval(() => res.write("x"), 20);
      trickles.add(timer);
      res.on("close", () => (clearInterval(timer), trickles.delete(timer)));
    });
    receiver.on("/query", (req, res) => res.writeHead(200).end(req.url));
  });
  afterAll(async () => {
    for (const timer of trickles) clearInterval(timer);
    await client.close();
    await receiver.close();
  });

  it("ends a call whose body keeps trickling in after its timeout, as a timeout", async () => {
    const started = performance.now();
    const error = await client.send({ url: receiver.url("/trickle"), method: "POST", body: "{}", timeoutMs: 300, maxBodyBytes: 1_000_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OutboundError);
    expect(error).toMatchObject({ errorClass: "timeout" });
    // At the deadline, not at the end of a body that never ends (nor after a 300 ms gap).
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("sends the path and the query string as given", async () => {
    const response = await client.send({ url: `${receiver.url("/query")}?a=1&b=%20x`, method: "POST", body: "{}", timeoutMs: 2_000, maxBodyBytes: 1024 });
    expect(response.statusCode).toBe(200);
    expect(response.body.toString()).toBe("/query?a=1&b=%20x");
  });
});
