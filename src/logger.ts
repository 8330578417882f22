import { pino, type DestinationStream, type Logger } from "pino";

/** Authorization headers and secrets never reach the logs, whatever a caller logs by mistake. */
const REDACT = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "client_secret",
  "*.client_secret",
  "access_token",
  "*.access_token",
  "secret",
  "*.secret",
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
