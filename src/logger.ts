import slowRedact from "@pinojs/redact";
import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Secrets never reach the logs, whatever a caller logs by mistake: credentials (Authorization and
 * Cookie headers, tokens, client secrets, admin and metrics tokens), webhook signing secrets and
 * signatures. Each key is redacted at the top level and one level down (`{ client: { secret } }`,
 * `{ headers: { authorization } }`), and headers two levels down (`{ req: { headers } }`).
 *
 * The top-level keys are pino's own `redact` paths, which cost nothing measurable. The nested ones
 * are wildcard paths (`*.secret`), which pino applies to every value of every line: with these 40
 * a line took ~29 µs instead of ~3.4 µs (scratch measurement, 50,000 lines), and at LOG_LEVEL=info
 * a request writes three lines. So a line is first checked for an object that could hold such a
 * key (`in` tests, whatever the object's size), and only a line that has one goes through the
 * wildcard redaction (@pinojs/redact, the library pino itself uses), as does an error holding one.
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
const CENSOR = "[redacted]";
const TOP_LEVEL = SECRET_KEYS.map((name) => key(name).replace(/^\./, ""));
const HEADERS = HEADER_KEYS.map((name) => `headers${key(name)}`);
/** A logged object's nested secrets: one level down, headers two. */
const redactNested = slowRedact({ paths: [...SECRET_KEYS.map((name) => `*${key(name)}`), ...HEADERS.map((path) => `*.${path}`)], censor: CENSOR, serialize: false });
/** A serialized error's own secrets (it is logged one level down, under `err`). */
const redactError = slowRedact({ paths: [...TOP_LEVEL, ...HEADERS], censor: CENSOR, serialize: false });

type Fields = Record<string, unknown>;
const isObject = (value: unknown): value is Fields => typeof value === "object" && value !== null;

/** Whether an object has a secret key, or headers with a secret header: what a nested path would redact in it. */
function holdsSecret(value: Fields): boolean {
  for (const name of SECRET_KEYS) if (name in value) return true;
  const headers = value.headers;
  if (isObject(headers)) for (const name of HEADER_KEYS) if (name in headers) return true;
  return false;
}

/** A line's fields, with the secrets of the objects among them redacted (a copy, only if there are any). */
function withoutNestedSecrets(fields: Fields): Fields {
  // An error under `err` is checked once serialized (withoutParameters): a copy of it would lose
  // its message and stack. Anything else there (a plain object) is checked like any field.
  const error = fields.err instanceof Error ? fields.err : undefined;
  for (const name in fields) {
    const value = fields[name];
    if (isObject(value) && (value as unknown) !== error && holdsSecret(value)) {
      if (!error) return redactNested(fields) as Fields;
      const { err, ...rest } = fields;
      return { ...(redactNested(rest) as Fields), err };
    }
  }
  return fields;
}

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
  return holdsSecret(serialized) ? redactError(serialized) : serialized;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { service: "ricochet" },
      redact: { paths: TOP_LEVEL, censor: CENSOR },
      formatters: { log: withoutNestedSecrets },
      serializers: { err: withoutParameters },
    },
    destination,
  );
  // A child's bindings skip pino's formatters, so they are checked here; children of children
  // inherit this method (pino makes each child with Object.create of its parent).
  type Child = (this: Logger, bindings: Fields, options?: object) => Logger;
  const child = logger.child as unknown as Child;
  logger.child = function (this: Logger, bindings: Fields, options?: object) {
    return child.call(this, withoutNestedSecrets(bindings), options);
  } satisfies Child as unknown as Logger["child"];
  return logger;
}
