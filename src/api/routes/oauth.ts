import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import { OAuthError, type OAuthErrorCode } from "../../auth/oauth-error.js";
import type { ClientCredentials } from "../../services/oauth.js";
import type { AppEnv } from "../env.js";
import { headers, problemResponses, type SchemaObject } from "../schemas.js";

const tags = ["OAuth2"];
// The client authenticates itself: with HTTP Basic, or with client_id and client_secret in the body.
const security: Record<string, string[]>[] = [{ clientBasic: [] }, {}];
const FORM = /^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i;
const JSON_TYPE = /^application\/([\w.-]+\+)?json\b/i;

/** RFC 6749 §5.2 and RFC 7009 §2.2.1 error codes, as the endpoints below use them. */
const OAUTH_ERRORS: Record<OAuthErrorCode, string> = {
  invalid_request: "A parameter is missing, repeated, or malformed, or the body cannot be read",
  invalid_client: "Client authentication failed (401)",
  invalid_grant: "Not used: there is no grant but client credentials",
  unauthorized_client: "The token to revoke belongs to another client",
  unsupported_grant_type: "grant_type is not client_credentials",
  invalid_scope: "A scope is unknown, or not one this client may have",
  unsupported_token_type: "Not used: there is one kind of token",
};

const OAuthErrorSchema = z
  .object({
    error: z.enum(Object.keys(OAUTH_ERRORS) as [OAuthErrorCode, ...OAuthErrorCode[]]).openapi({
      description: Object.entries(OAUTH_ERRORS).map(([code, meaning]) => `\`${code}\`: ${meaning}`).join("; "),
    }),
    error_description: z.string().openapi({ description: "What went wrong, for a developer" }),
  })
  .openapi("OAuthError", { description: "An error of the token or revocation endpoint (RFC 6749 §5.2), not problem+json: OAuth client libraries expect this" });

const oauthErrors = {
  400: { description: "invalid_request, unsupported_grant_type, invalid_scope or unauthorized_client", headers: headers("Cache-Control"), content: { "application/json": { schema: OAuthErrorSchema } } },
  401: {
    description: "invalid_client; with `WWW-Authenticate: Basic` when the client tried HTTP Basic or sent no credentials (RFC 6749 §5.2)",
    headers: headers("WWW-Authenticate", "Cache-Control"),
    content: { "application/json": { schema: OAuthErrorSchema } },
  },
  ...problemResponses(429, 503),
};

/** The parameters as a form; the same names are accepted as multipart/form-data or a JSON object. */
const params = (properties: Record<string, SchemaObject>, required: string[]) => {
  const schema: SchemaObject = { type: "object", properties, required };
  return {
    required: true,
    content: {
      "application/x-www-form-urlencoded": { schema },
      "multipart/form-data": { schema },
      "application/json": { schema },
    },
  };
};
const clientParams: Record<string, SchemaObject> = {
  client_id: { type: "string", description: "With client_secret, when not using HTTP Basic" },
  client_secret: { type: "string", description: "With client_id, when not using HTTP Basic" },
};

// The bodies are read by hand (readParams), so they are declared as plain schemas, which are
// documented but not validated: zod schemas would be validated into problem+json errors, and
// these endpoints must answer per RFC 6749.
const token = createRoute({
  method: "post",
  path: "/oauth/token",
  operationId: "issueToken",
  tags,
  security,
  summary: "Exchange client credentials for a bearer token (RFC 6749 §4.4)",
  description:
    "Parameters `grant_type=client_credentials`, `client_id`, `client_secret`, `scope` (`*`, the default, or space-separated `read write`) as application/x-www-form-urlencoded, multipart/form-data or JSON. Credentials in the body or HTTP Basic, not both. `expires_in` is left out when tokens do not expire (`TOKEN_TTL=0`). `invalid_client` is 401, with `WWW-Authenticate: Basic` when the client tried HTTP Basic (RFC 6749 §5.2). Repeated failed authentications of a client from one address are throttled (429 with Retry-After).",
  request: {
    body: params(
      {
        grant_type: { type: "string", const: "client_credentials" },
        ...clientParams,
        scope: { type: "string", description: "`*` (the default: every scope the client has), or space-separated scopes", examples: ["read write"] },
      },
      ["grant_type"],
    ),
  },
  responses: {
    200: {
      description: "A token",
      headers: headers("Cache-Control", "Pragma"),
      content: {
        "application/json": {
          schema: z
            .object({
              token_type: z.literal("Bearer"),
              access_token: z.string(),
              expires_in: z.number().int().positive().optional().openapi({ description: "Seconds; absent when tokens do not expire (TOKEN_TTL=0)" }),
              scope: z.string().openapi({ description: "The granted scopes, space-separated" }),
            })
            .openapi("TokenResponse"),
        },
      },
    },
    ...oauthErrors,
  },
});

const revoke = createRoute({
  method: "post",
  path: "/oauth/revoke",
  operationId: "revokeToken",
  tags,
  security,
  summary: "Revoke one of your tokens (RFC 7009)",
  description:
    "Parameter `token` (and optionally `token_type_hint`, which is not needed: there is one kind of token), with client authentication as for /oauth/token. A token of another client is refused (`unauthorized_client`, RFC 7009 §2.1).",
  request: {
    body: params({ token: { type: "string" }, token_type_hint: { type: "string", description: "Ignored" }, ...clientParams }, ["token"]),
  },
  responses: {
    200: { description: "Revoked, or unknown: either way it no longer works", headers: headers("Cache-Control") },
    ...oauthErrors,
  },
});

const MAX_PARAM_LENGTH = 4096;
/** What may be looked up: no NUL and no lone surrogate (PostgreSQL refuses both), and not huge. */
const acceptable = (value: string) => value.length <= MAX_PARAM_LENGTH && !value.includes("\u0000") && value.isWellFormed();

/** Reads the parameters of a token or revocation request, whatever its encoding. */
async function readParams(c: Context<AppEnv>): Promise<Record<string, string>> {
  const type = c.req.header("content-type") ?? "";
  let raw: Record<string, unknown>;
  if (FORM.test(type)) {
    raw = await c.req.parseBody({ all: true }).catch(() => {
      throw new OAuthError("invalid_request", "The form body could not be read");
    });
  } else if (JSON_TYPE.test(type)) {
    raw = await c.req.json().catch(() => {
      throw new OAuthError("invalid_request", "The JSON body could not be parsed");
    });
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new OAuthError("invalid_request", "The JSON body must be an object");
  } else {
    throw new OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded, multipart/form-data or JSON");
  }
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== "string") throw new OAuthError("invalid_request", `Parameter ${name} must be given once, as a string`);
    if (!acceptable(value)) throw new OAuthError("invalid_request", `Parameter ${name} must be valid Unicode without U+0000, at most ${MAX_PARAM_LENGTH} characters`);
    params[name] = value;
  }
  return params;
}

/** The TCP peer's address (behind a proxy: the proxy's); "unknown" when called in process. */
function sourceAddress(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Client authentication: HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or body parameters, never both. */
function readCredentials(c: Context<AppEnv>, params: Record<string, string>): ClientCredentials {
  const basic = /^Basic +(\S+)$/i.exec(c.req.header("authorization") ?? "");
  if (basic) {
    if (params.client_secret !== undefined) throw new OAuthError("invalid_request", "Use HTTP Basic or client_secret in the body, not both");
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new OAuthError("invalid_client", "Malformed HTTP Basic credentials", true);
    const decode = (part: string) => {
      try {
        return decodeURIComponent(part.replace(/\+/g, " "));
      } catch {
        throw new OAuthError("invalid_client", "Malformed HTTP Basic credentials", true);
      }
    };
    const [clientId, clientSecret] = [decode(decoded.slice(0, colon)), decode(decoded.slice(colon + 1))];
    if (!acceptable(clientId) || !acceptable(clientSecret)) throw new OAuthError("invalid_client", "Malformed HTTP Basic credentials", true);
    return { clientId, clientSecret, usedBasic: true, address: sourceAddress(c) };
  }
  if (!params.client_id || !params.client_secret) {
    // No credentials at all: challenge with Basic, the scheme every client supports.
    const presented = params.client_id !== undefined || params.client_secret !== undefined;
    throw new OAuthError("invalid_client", "Client credentials are missing", !presented);
  }
  return { clientId: params.client_id, clientSecret: params.client_secret, usedBasic: false, address: sourceAddress(c) };
}

export function registerOAuthRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(token, async (c) => {
    const params = await readParams(c);
    if (!params.grant_type) throw new OAuthError("invalid_request", "grant_type is required");
    if (params.grant_type !== "client_credentials") {
      throw new OAuthError("unsupported_grant_type", "Only grant_type=client_credentials is supported");
    }
    const issued = await c.get("services").oauth.issueToken(readCredentials(c, params), params.scope);
    c.header("Cache-Control", "no-store");
    c.header("Pragma", "no-cache");
    return c.json(issued, 200);
  });

  app.openapi(revoke, async (c) => {
    const params = await readParams(c);
    const credentials = readCredentials(c, params);
    if (!params.token) throw new OAuthError("invalid_request", "token is required");
    await c.get("services").oauth.revokeToken(credentials, params.token);
    c.header("Cache-Control", "no-store");
    return c.body(null, 200);
  });
}
