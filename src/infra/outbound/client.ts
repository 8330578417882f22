import { lookup as systemLookup, promises as dnsPromises, type LookupAddress, type LookupOptions } from "node:dns";
import { EventEmitter } from "node:events";
import { Agent } from "undici";
import type { AddressPolicy } from "./address-policy.js";

/** Why an outbound call failed, as callback attempts record it. */
export type OutboundErrorClass =
  | "blocked_address"
  | "invalid_url"
  | "dns_failure"
  | "connection_refused"
  | "connection_reset"
  | "timeout"
  | "tls_error"
  | "network_error";

export class OutboundError extends Error {
  override name = "OutboundError";
  constructor(
    readonly errorClass: OutboundErrorClass,
    message: string,
  ) {
    super(message);
  }
}

class BlockedAddress extends Error {
  override name = "BlockedAddress";
  readonly code = "EBLOCKED";
}

export type OutboundResponse = { statusCode: number; headers: Record<string, string | string[] | undefined>; body: Buffer; truncated: boolean };

export type OutboundRequest = {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs: number;
  /** At most this much of the response body is read; the rest is never downloaded. */
  maxBodyBytes: number;
};

type Resolve = (hostname: string) => Promise<LookupAddress[]>;

function resolver(dnsServers: readonly string[]): Resolve {
  if (dnsServers.length === 0) {
    return (hostname) =>
      new Promise((resolve, reject) =>
        systemLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
      );
  }
  const dns = new dnsPromises.Resolver({ timeout: 2_000, tries: 2 });
  dns.setServers([...dnsServers]);
  return async (hostname) => {
    const [v4, v6] = await Promise.allSettled([dns.resolve4(hostname), dns.resolve6(hostname)]);
    const addresses = [
      ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
    if (addresses.length === 0) throw Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" });
    return addresses;
  };
}

/**
 * The one HTTP client for everything that leaves the service (callbacks, the http action).
 * Host names are resolved inside the socket's own connect step, and every address is vetted
 * there: the connection goes to the address that was checked, so a DNS answer that changes
 * between a check and the connect (rebinding) cannot slip through. IP literals are vetted
 * before the request. Redirects are never followed; the body read is capped.
 */
export function createOutboundClient(options: {
  policy: AddressPolicy;
  dnsServers?: readonly string[];
  userAgent: string;
  /** Keep-alive connections per origin (default 32): as many as requests to one origin may be in flight. */
  connectionsPerOrigin?: number;
}) {
  const { policy } = options;
  const resolve = resolver(options.dnsServers ?? []);

  const guardedLookup = (hostname: string, lookupOptions: LookupOptions, callback: (...args: unknown[]) => void) => {
    resolve(hostname).then(
      (addresses) => {
        if (!policy.hostAllowed(hostname)) {
          for (const { address } of addresses) {
            const refusal = policy.refusal(address);
            if (refusal) return callback(new BlockedAddress(`${hostname} resolves to ${address}, ${refusal}, which outbound calls may not reach`));
          }
        }
        const wanted = lookupOptions.family ? addresses.filter((a) => a.family === lookupOptions.family) : addresses;
        if (wanted.length === 0) return callback(Object.assign(new Error(`no IPv${lookupOptions.family} address for ${hostname}`), { code: "ENOTFOUND" }));
        if (lookupOptions.all) callback(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (error: unknown) => callback(error),
    );
  };

  const agent = new Agent({
    connect: { lookup: guardedLookup as never, timeout: 10_000 },
    keepAliveTimeout: 4_000,
    connections: options.connectionsPerOrigin ?? 32,
  });

  async function send(req: OutboundRequest): Promise<OutboundResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      throw new OutboundError("invalid_url", "not an absolute URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new OutboundError("invalid_url", "only http and https are allowed");
    if (url.username || url.password) throw new OutboundError("invalid_url", "credentials in the URL are not allowed");
    if (url.port === "0") throw new OutboundError("invalid_url", "port 0 cannot be connected to");
    if (policy.isIpLiteral(url.hostname)) {
      const refusal = policy.refusal(url.hostname);
      if (refusal) throw new OutboundError("blocked_address", `${url.hostname} is ${refusal}, which outbound calls may not reach`);
    }
    // One deadline for connecting, the headers and the body: a timer cleared when the call ends,
    // firing an EventEmitter, which undici takes as a signal. An AbortSignal costs several µs to
    // create (an EventTarget), AbortSignal.timeout() ~25 times more, and keeps its timer and signal
    // alive for the whole timeout after the answer (one per callback, thousands a second).
    const deadline = new EventEmitter();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.emit("abort");
    }, req.timeoutMs);
    try {
      // The agent's own request (not undici's top-level `request`, which parses the URL again).
      const response = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: (req.method ?? "GET") as "GET",
        headers: { "user-agent": options.userAgent, ...req.headers },
        body: req.body ?? null,
        signal: deadline,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        const room = req.maxBodyBytes - size;
        if (buffer.length >= room) {
          chunks.push(buffer.subarray(0, room));
          size += room;
          truncated = buffer.length > room;
          break;
        }
        chunks.push(buffer);
        size += buffer.length;
      }
      // Leaving the loop early destroys the stream: the rest of a huge body is never read.
      if (truncated || size >= req.maxBodyBytes) response.body.destroy();
      return { statusCode: response.statusCode, headers: response.headers, body: Buffer.concat(chunks), truncated };
    } catch (error) {
      throw classify(error, timedOut);
    } finally {
      clearTimeout(timer);
    }
  }

  return { send, close: () => agent.close() };
}

export type OutboundClient = ReturnType<typeof createOutboundClient>;

function classify(error: unknown, timedOut: boolean): OutboundError {
  if (error instanceof OutboundError) return error;
  const chain: { code?: string; name?: string; message?: string }[] = [];
  for (let e = error as { cause?: unknown } | undefined; e && chain.length < 5; e = e.cause as typeof e) chain.push(e as never);
  const codes = chain.map((e) => e.code ?? "");
  const names = chain.map((e) => e.name ?? "");
  const message = chain.map((e) => e.message).filter(Boolean).join(": ") || String(error);
  const blocked = chain.find((e) => e.code === "EBLOCKED");
  if (blocked) return new OutboundError("blocked_address", blocked.message ?? "blocked address");
  if (timedOut || codes.some((c) => /TIMEOUT/.test(c)) || names.some((n) => n === "TimeoutError")) {
    return new OutboundError("timeout", "no complete answer within the timeout");
  }
  if (codes.some((c) => c === "ENOTFOUND" || c === "EAI_AGAIN" || c === "ESERVFAIL" || c === "ENODATA")) return new OutboundError("dns_failure", message);
  if (codes.includes("ECONNREFUSED")) return new OutboundError("connection_refused", message);
  if (codes.some((c) => c === "ECONNRESET" || c === "EPIPE" || c === "UND_ERR_SOCKET" || c === "UND_ERR_CLOSED")) return new OutboundError("connection_reset", message);
  if (codes.some((c) => /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH)/.test(c)) || /SSL|TLS|certificate/i.test(message)) {
    return new OutboundError("tls_error", message);
  }
  return new OutboundError("network_error", message);
}
