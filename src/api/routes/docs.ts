import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import { SCOPES } from "../../auth/scopes.js";
import type { AppEnv } from "../env.js";
import { headers, RESPONSE_HEADERS, SCOPE_DESCRIPTIONS, type OpenAPIDocument } from "../schemas.js";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};
const assetsDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

const TAGS = [
  { name: "Async requests", description: "Submit a request to an action, follow it (poll, long-poll, events), get its result, cancel it" },
  { name: "Callbacks", description: "The signed POST of the result to callbackUrl: its attempts, and redelivery" },
  { name: "Actions", description: "What this deployment can do, with each action's input and result schema" },
  { name: "OAuth2", description: "Client credentials (RFC 6749 §4.4) for the /api operations, and revocation (RFC 7009)" },
  { name: "Admin", description: "Operators: tenants, clients, secrets, queues. Needs ADMIN_TOKEN" },
  { name: "Operations", description: "Liveness, readiness and Prometheus metrics" },
];

/**
 * The OpenAPI document at /openapi.json and Swagger UI over it at /docs.
 *
 * The document's server is the relative URL `/`: OpenAPI resolves it against wherever the
 * document was fetched from, so "Try it out" (and the token URL, relative to the server) reach
 * this very service as the browser sees it, behind a TLS-terminating proxy too, without trusting
 * a Host or X-Forwarded-* header. A generated client is given its base URL anyway.
 */
export function registerDocsRoutes(app: OpenAPIHono<AppEnv>, options: { version: string }) {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "oauth2", {
    type: "oauth2",
    description: "A bearer token from POST /oauth/token with the client's id and secret (from the admin API or `ricochet clients create`)",
    flows: { clientCredentials: { tokenUrl: "/oauth/token", scopes: Object.fromEntries(SCOPES.map((scope) => [scope, SCOPE_DESCRIPTIONS[scope]])) } },
  });
  registry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN as a bearer token" });
  registry.registerComponent("securitySchemes", "clientBasic", { type: "http", scheme: "basic", description: "client_id and client_secret as HTTP Basic user and password (RFC 6749 §2.3.1)" });
  registry.registerComponent("securitySchemes", "metricsToken", { type: "http", scheme: "bearer", description: "METRICS_TOKEN, when it is set" });
  for (const [name, header] of Object.entries(RESPONSE_HEADERS)) registry.registerComponent("headers", name, header);

  // Built at the first request, when every route is registered; the routes do not change after.
  let document: OpenAPIDocument | undefined;
  app.get("/openapi.json", (c) => {
    document ??= withRequestIds(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: { title: "Ricochet", version: options.version, description: "Asynchronous requests with signed, retried callbacks." },
        servers: [{ url: "/", description: "This service, where the document was fetched from" }],
        tags: TAGS,
      }),
    );
    return c.json(document);
  });

  app.get("/docs", swaggerUI({ url: "/openapi.json", baseUrl: "/docs/assets", title: "Ricochet API" }));
  app.get("/docs/assets/swagger-ui-dist/:file", async (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) return c.notFound();
    return c.body(await readFile(join(assetsDir, file)), 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  });
}

/** Every answer carries X-Request-Id (src/api/request-id.ts): said once here rather than in each route. */
function withRequestIds(document: OpenAPIDocument): OpenAPIDocument {
  for (const item of Object.values(document.paths ?? {})) {
    for (const method of ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const) {
      for (const response of Object.values(item[method]?.responses ?? {}) as { headers?: Record<string, unknown> }[]) response.headers = { ...headers("X-Request-Id"), ...response.headers };
    }
  }
  return document;
}
