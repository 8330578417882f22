import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Secrets never reach the logs, whatever a caller logs by mistake: credentials (Authorization and
 * Cookie headers, tokens, client secrets, admin and metrics tokens), webhook signing secrets and
 * signatures. Each key is redacted at the top level and one level down (`{ client: { secret } }`,
 * `{ headers: { authorization } }`), and headers two levels down (`{ req: { headers } }`).
 */
const SECRET_KEYS = [
  "authorization",
  "cookie",
  "secret",
  "secrets",
  "client_secret",
  "clientSecret",
  "webhook_secret",
  "webhookSecret",
  "signingSecret",
  "token",
  "access_token",
  "accessToken",
  "refresh_token",
  "adminToken",
  "metricsToken",
  "password",
  "signature",
  "webhook-signature",
];
const HEADER_KEYS = ["authorization", "cookie", "set-cookie", "webhook-signature"];
const key = (name: string) => (/^\w+$/.test(name) ? `.${name}` : `["${name}"]`);
const REDACT = [
  ...SECRET_KEYS.map((name) => key(name).replace(/^\./, "")),
  ...SECRET_KEYS.map((name) => `*${key(name)}`),
  ...HEADER_KEYS.map((name) => `*.headers${key(name)}`),
];

/**
 * Errors are logged without the values they carry: a failed query's parameters are a request's
 * input and metadata (drizzle puts them in the message and a `params` field), so both go.
 */
export function withoutParameters(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  delete serialized.params;
  if (typeof serialized.message === "string") serialized.message = serialized.message.replace(/\nparams: [\s\S]*$/, "");
  if (typeof serialized.stack === "string") serialized.stack = serialized.stack.replace(/\nparams: [\s\S]*?(\n    at |$)/, "$1");
  return serialized;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, base: { service: "ricochet" }, redact: { paths: REDACT, censor: "[redacted]" }, serializers: { err: withoutParameters } },
    destination,
  );
}
