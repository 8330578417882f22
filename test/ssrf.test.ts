import ipaddr from "ipaddr.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOutboundUrl, createAddressPolicy, isIpAddress } from "../src/infra/outbound/address-policy.js";
import { createOutboundClient, OutboundError } from "../src/infra/outbound/client.js";
import { startDnsServer } from "./helpers/dns-server.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { jsonBody, startTestRuntime, waitForCallback } from "./helpers/runtime.js";

const BLOCKED_URLS = [
  "http://127.0.0.1/",
  "http://127.1.2.3/",
  "http://0.0.0.0/",
  "http://10.0.0.1/",
  "http://172.16.5.4/",
  "http://192.168.1.1/",
  "http://169.254.169.254/latest/meta-data/", // cloud metadata (link-local)
  "http://100.64.0.1/", // CGNAT
  "http://100.100.100.200/", // Alibaba metadata, CGNAT
  "http://224.0.0.1/", // multicast
  "http://255.255.255.255/",
  "http://192.0.2.10/", // documentation (reserved)
  "http://198.18.0.1/", // benchmarking
  "http://240.0.0.1/", // reserved
  "http://[::1]/",
  "http://[::]/",
  "http://[fc00::1]/", // unique local
  "http://[fd00:ec2::254]/", // AWS metadata over IPv6
  "http://[fe80::1]/", // link-local
  "http://[ff02::1]/", // multicast
  "http://[::ffff:127.0.0.1]/", // IPv4-mapped loopback
  "http://[::ffff:169.254.169.254]/", // IPv4-mapped metadata
  "http://2130706433/", // 127.0.0.1 in decimal
  "http://017700000001/", // in octal
  "http://0177.0.0.1/", // octal first octet
  "http://0x7f000001/", // hex
  "http://0x7f.0x0.0x0.0x1/", // dotted hex
  "http://127.1/", // short form
  "http://3232235777/", // 192.168.1.1 in decimal
  "http://[::127.0.0.1]/", // IPv4-compatible loopback (the URL parser writes it ::7f00:1)
  "http://[::7f00:1]/",
  "http://[::a9fe:a9fe]/", // IPv4-compatible metadata
  "http://[::8.8.8.8]/", // IPv4-compatible, even of a public address
  "http://[::1:0:0:1]/", // reserved (outside 2000::/3)
  "http://[64:ff9b::7f00:1]/", // NAT64 of 127.0.0.1
  "http://[64:ff9b::a9fe:a9fe]/", // NAT64 of the metadata address
  "http://[2002:7f00:1::1]/", // 6to4 of 127.0.0.1
  "http://[2002:a9fe:a9fe::1]/", // 6to4 of the metadata address
  "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo of 127.0.0.1 (obfuscated)
  "http://[2001:db8::1]/", // documentation
  "http://[::ffff:10.0.0.1]/", // IPv4-mapped private
];

/** Refused at submit and at delivery alike, but not for their address: their shape. */
const BAD_SHAPE_URLS = ["http://localhost:0/", "http://example.com:0/hook", "http://93.184.216.34:0/"];

describe("callback URL shape, checked at submit", () => {
  const policy = createAddressPolicy([]);

  it.each(BLOCKED_URLS)("refuses %s", (url) => {
    expect(checkOutboundUrl(url, policy)).toMatch(/must not point at .*, an? [\w-]+ address/);
  });

  it.each(BAD_SHAPE_URLS)("refuses %s (port 0)", (url) => {
    expect(checkOutboundUrl(url, policy)).toMatch(/port 0/);
  });

  it("lets through what carries an allow-listed IPv4 address, and public IPv4-mapped addresses", () => {
    const allowing = createAddressPolicy(["127.0.0.1/32"]);
    expect(checkOutboundUrl("http://[::ffff:127.0.0.1]/", allowing)).toBeUndefined();
    expect(checkOutboundUrl("http://[64:ff9b::7f00:1]/", allowing)).toBeUndefined();
    expect(checkOutboundUrl("http://[::ffff:8.8.8.8]/", policy)).toBeUndefined();
    expect(checkOutboundUrl("http://[2606:4700::1111]/", policy)).toBeUndefined(); // global unicast
  });

  it("refuses other schemes, credentials and junk", () => {
    expect(checkOutboundUrl("ftp://example.com/x", policy)).toMatch(/http or https/);
    expect(checkOutboundUrl("file:///etc/passwd", policy)).toMatch(/http or https/);
    expect(checkOutboundUrl("javascript:alert(1)", policy)).toMatch(/http or https/);
    expect(checkOutboundUrl("https://user:pass@example.com/", policy)).toMatch(/credentials/);
    expect(checkOutboundUrl("https://user@example.com/", policy)).toMatch(/credentials/);
    expect(checkOutboundUrl("not a url", policy)).toMatch(/absolute/);
    expect(checkOutboundUrl(`https://example.com/${"x".repeat(2100)}`, policy)).toMatch(/2048/);
  });

  it("accepts public addresses and host names (their address is checked at each attempt)", () => {
    expect(checkOutboundUrl("https://example.com/hooks?x=1", policy)).toBeUndefined();
    expect(checkOutboundUrl("http://93.184.216.34:8080/hook", policy)).toBeUndefined();
    expect(checkOutboundUrl("http://localhost:3000/", policy)).toBeUndefined();
  });

  it("tells IP literals in every form from host names", () => {
    for (const address of ["127.0.0.1", "2130706433", "017700000001", "0x7f000001", "0x7F.0x0.0x0.0x1", "127.1", "::1", "::ffff:127.0.0.1", "fe80::1%eth0"]) {
      expect(isIpAddress(address), address).toBe(true);
    }
    for (const name of ["example.com", "localhost", "face.cafe", "0x7g.1", "1.2.3.4.5", "", "ab.cd"]) expect(isIpAddress(name), name).toBe(false);
    // The same verdicts as ipaddr.isValid, on strings made of what addresses and names are made of.
    const alphabet = "0123456789abcdefxgXz.:-%";
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 1) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: 1 + Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("");
      expect(isIpAddress(text), text).toBe(ipaddr.isValid(text));
    }
    expect(policy.isIpLiteral("[::1]")).toBe(true);
    expect(policy.isIpLiteral("hooks.example.com")).toBe(false);
  });

  it("lets an operator allow networks and hosts", () => {
    const allowing = createAddressPolicy(["127.0.0.1/32", "10.0.0.0/8", "::1"]);
    expect(checkOutboundUrl("http://127.0.0.1:9000/", allowing)).toBeUndefined();
    expect(checkOutboundUrl("http://10.20.30.40/", allowing)).toBeUndefined();
    expect(checkOutboundUrl("http://[::1]/", allowing)).toBeUndefined();
    expect(checkOutboundUrl("http://127.0.0.2/", allowing)).toMatch(/loopback/);
  });

  it("answers 422 on submit and writes nothing", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false } });
    try {
      for (const callbackUrl of ["http://169.254.169.254/", "http://0x7f000001/", "ftp://x/", "https://a:b@example.com/"]) {
        const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl }));
        expect(response.status).toBe(422);
        expect(((await response.json()) as { errors: { path: string }[] }).errors[0]?.path).toBe("callbackUrl");
      }
      const list = (await (await rt.request("/api/v1/async")).json()) as { asyncRequests: unknown[] };
      expect(list.asyncRequests).toHaveLength(0);
    } finally {
      await rt.stop();
    }
  });
});

describe("addresses checked at each attempt, on the address actually connected to", () => {
  let receiver: Receiver;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  beforeAll(async () => {
    receiver = await startReceiver("127.0.0.1");
    dns = await startDnsServer((name, type, n) => {
      if (type === "AAAA") return [];
      if (name === "loopback.test") return [{ type: "A", address: "127.0.0.1" }];
      // Rebinding: the first answer is an allowed address, every later one is loopback.
      if (name === "rebind.test") return [{ type: "A", address: n === 1 ? "127.0.0.2" : "127.0.0.1" }];
      if (name === "mixed.test") return [{ type: "A", address: "127.0.0.2" }, { type: "A", address: "127.0.0.1" }];
      return ["NXDOMAIN"];
    });
  });
  afterAll(async () => {
    await receiver.close();
    await dns.close();
  });

  const client = (allow: string[] = [], dnsServers = [dns.server]) =>
    createOutboundClient({ policy: createAddressPolicy(allow), dnsServers, userAgent: "test" });
  const send = async (c: ReturnType<typeof client>, url: string) => {
    try {
      await c.send({ url, method: "POST", timeoutMs: 2_000, maxBodyBytes: 1024 });
      return undefined;
    } catch (error) {
      return error as OutboundError;
    } finally {
      await c.close();
    }
  };

  it.each(BLOCKED_URLS)("refuses %s before connecting", async (url) => {
    const error = await send(client(), url);
    expect(error).toBeInstanceOf(OutboundError);
    expect(error?.errorClass).toBe("blocked_address");
  });

  it.each(BAD_SHAPE_URLS)("refuses %s before connecting", async (url) => {
    const error = await send(client(), url);
    expect(error).toMatchObject({ errorClass: "invalid_url", message: expect.stringContaining("port 0") });
  });

  it("refuses a host name that resolves to 127.0.0.1, through DNS or /etc/hosts", async () => {
    const viaDns = await send(client(), `http://loopback.test:${receiver.port}/hook`);
    expect(viaDns).toMatchObject({ errorClass: "blocked_address", message: expect.stringContaining("loopback.test resolves to 127.0.0.1, a loopback address") });
    const viaHosts = await send(client([], []), `http://localhost:${receiver.port}/hook`);
    expect(viaHosts?.errorClass).toBe("blocked_address");
    expect(receiver.received).toHaveLength(0);
  });

  it("refuses a name with any blocked address among its answers", async () => {
    const error = await send(client(["127.0.0.2/32"]), `http://mixed.test:${receiver.port}/hook`);
    expect(error?.errorClass).toBe("blocked_address");
  });

  it("connects to the vetted address, so an answer that changes between check and connect cannot slip through", async () => {
    // 127.0.0.2 is allowed and nothing listens there; the receiver listens on 127.0.0.1 only.
    const first = await send(client(["127.0.0.2/32"]), `http://rebind.test:${receiver.port}/hook`);
    expect(first?.errorClass).toBe("connection_refused"); // it went to 127.0.0.2, the address it checked
    expect(dns.queries.filter((q) => q.name === "rebind.test" && q.type === "A")).toHaveLength(1); // one look-up, used for both
    const second = await send(client(["127.0.0.2/32"]), `http://rebind.test:${receiver.port}/hook`);
    expect(second).toMatchObject({ errorClass: "blocked_address", message: expect.stringContaining("rebind.test resolves to 127.0.0.1") });
    expect(receiver.received).toHaveLength(0);
  });

  it("lets an allow-listed host name through", async () => {
    const error = await send(client(["loopback.test"]), `http://loopback.test:${receiver.port}/allowed`);
    expect(error).toBeUndefined();
    expect(receiver.requestsTo("/allowed")).toHaveLength(1);
  });

  it("records a blocked address as a failed callback attempt with a clear error", async () => {
    const rt = await startTestRuntime({ env: { OUTBOUND_DNS_SERVERS: dns.server, CALLBACK_RETRY_DELAYS: "10ms" } });
    try {
      const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl: `http://loopback.test:${receiver.port}/hook` }));
      const { id } = ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest;
      const exhausted = await waitForCallback(rt, rt, id, "EXHAUSTED");
      expect(exhausted.callback.lastError).toMatch(/^blocked_address: loopback.test resolves to 127.0.0.1/);
      expect(receiver.requestsTo("/hook")).toHaveLength(0);
    } finally {
      await rt.stop();
    }
  });
});
