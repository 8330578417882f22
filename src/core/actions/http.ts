import { z } from "zod";
import { OutboundError } from "../../infra/outbound/client.js";
import { ActionError, defineAction } from "./types.js";

const FORBIDDEN_HEADERS = new Set(["host", "content-length", "connection", "transfer-encoding", "upgrade", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection"]);

/**
 * Calls an upstream on the operator's allow-list (HTTP_ACTION_UPSTREAMS) and returns
 * `{status, headers, body}`: a slow synchronous API becomes an asynchronous one. Any answer,
 * whatever its status, COMPLETES the request; only an unreachable upstream FAILS it.
 */
export function createHttpAction(upstreams: readonly string[]) {
  const allowed = upstreams.map((base) => new URL(base).toString());
  const input = z
    .object({
      url: z
        .string()
        .max(2048)
        .url()
        .refine((url) => URL.canParse(url) && allowed.some((base) => new URL(url).toString().startsWith(base)), {
          message: `must start with one of the allowed upstreams: ${allowed.join(", ")}`,
        }),
      method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]).default("GET"),
      query: z
        .record(z.string().max(256), z.string().max(2048))
        .default({})
        .refine((query) => Object.keys(query).length <= 50, { message: "at most 50 parameters" }),
      headers: z
        .record(z.string().max(256), z.string().max(8192))
        .default({})
        .refine((headers) => Object.keys(headers).length <= 50, { message: "at most 50 headers" })
        .refine((headers) => Object.keys(headers).every((name) => !FORBIDDEN_HEADERS.has(name.toLowerCase())), {
          message: `may not set ${[...FORBIDDEN_HEADERS].join(", ")}`,
        }),
      body: z
        .unknown()
        .optional()
        .refine((body) => body === undefined || (typeof body === "string" ? body : JSON.stringify(body)).length <= 1024 * 1024, { message: "must be at most 1 MiB" })
        .describe("Sent as JSON, or as it is when it is a string; at most 1 MiB"),
    })
    .strict();

  return defineAction({
    name: "http",
    description: "Calls an allow-listed upstream URL and returns its status, headers and body.",
    input,
    resultKey: "response",
    async run(params, { http, signal }) {
      const url = new URL(params.url);
      for (const [name, value] of Object.entries(params.query)) url.searchParams.append(name, value);
      const headers: Record<string, string> = { ...params.headers };
      let body: string | undefined;
      if (params.body !== undefined) {
        body = typeof params.body === "string" ? params.body : JSON.stringify(params.body);
        if (typeof params.body !== "string" && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
      }
      signal.throwIfAborted();
      let response;
      try {
        response = await http.send({ url: url.toString(), method: params.method, headers, body, timeoutMs: http.timeoutMs, maxBodyBytes: http.maxBodyBytes });
      } catch (error) {
        if (error instanceof OutboundError) throw new ActionError(`UPSTREAM_${error.errorClass.toUpperCase()}`, error.message);
        throw error;
      }
      const text = response.body.toString("utf8");
      const contentType = String(response.headers["content-type"] ?? "");
      let parsed: unknown = text;
      if (/\bjson\b/i.test(contentType) && !response.truncated) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: response.statusCode, headers: response.headers, body: parsed, truncated: response.truncated };
    },
  });
}
