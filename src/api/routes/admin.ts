import type { Context } from "hono";
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { SCOPES } from "../../auth/scopes.js";
import type { AppEnv } from "../env.js";
import { headers, problemResponses, QueueCounts } from "../schemas.js";

const tags = ["Admin"];
// The admin guard (src/api/admin-auth.ts) takes ADMIN_TOKEN as a bearer token or as the Basic password.
const security: Record<string, string[]>[] = [{ adminToken: [] }, { adminBasic: [] }];
const json = <T extends z.ZodType>(description: string, schema: T) => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { "application/json": { schema } } });
const limit = z.number().int().min(1).max(10_000_000);
const instant = z.string().openapi({ format: "date-time", example: "2026-11-23T10:00:00.000Z" });
const secretHeaders = headers("Cache-Control");

const TenantIdParam = z.object({ tenantId: z.string().max(63).openapi({ param: { name: "tenantId", in: "path" }, example: "acme" }) });
const ClientIdParam = z.object({ clientId: z.string().max(100).openapi({ param: { name: "clientId", in: "path" }, example: "cli_0123456789abcdef01234567" }) });

const TenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    limits: z.object({
      maxConcurrent: z.number().int().openapi({ description: "RUNNING requests at once: the tenant's own, else MAX_CONCURRENT_PER_TENANT" }),
      maxQueued: z.number().int().openapi({ description: "QUEUED requests at most: the tenant's own, else MAX_QUEUED_PER_TENANT" }),
      maxConcurrentOverridden: z.boolean(),
      maxQueuedOverridden: z.boolean(),
    }),
    createdAt: instant,
  })
  .openapi("Tenant");

const ClientSchema = z
  .object({
    clientId: z.string(),
    tenantId: z.string(),
    name: z.string(),
    scopes: z.array(z.string()).openapi({ description: `Any of: ${SCOPES.join(", ")}` }),
    createdAt: instant,
    revokedAt: instant.nullable(),
  })
  .openapi("Client");

const CreatedClientSchema = ClientSchema.extend({
  clientSecret: z.string().openapi({ description: "For POST /oauth/token; shown only here" }),
  webhookSecret: z.string().openapi({ description: "Verifies the signatures of callbacks (Standard Webhooks); shown only here" }),
}).openapi("CreatedClient");

const RotatedSecretSchema = z
  .union([
    z.object({ clientId: z.string(), clientSecret: z.string().openapi({ description: "The new client secret; the old one no longer works" }) }),
    z.object({
      clientId: z.string(),
      webhookSecret: z.string().openapi({ description: "The new signing secret" }),
      previousValidUntil: instant.openapi({ description: "Until then callbacks are signed with the previous secret too" }),
    }),
  ])
  .openapi("RotatedSecret");


const routes = {
  createTenant: createRoute({
    method: "post", path: "/admin/v1/tenants", operationId: "createTenant", tags, security, summary: "Create a tenant",
    request: { body: body(z.object({ id: z.string().openapi({ description: "Lowercase letters, digits, - and _; at most 63", example: "acme" }), name: z.string().min(1).max(200).optional(), maxConcurrent: limit.optional(), maxQueued: limit.optional() }).strict()) },
    responses: { 201: json("The tenant", TenantSchema), ...problemResponses(401, 409, 422, 503) },
  }),
  listTenants: createRoute({
    method: "get", path: "/admin/v1/tenants", operationId: "listTenants", tags, security, summary: "List tenants with their effective limits",
    responses: { 200: json("Tenants", z.object({ tenants: z.array(TenantSchema) })), ...problemResponses(401, 503) },
  }),
  setLimits: createRoute({
    method: "patch", path: "/admin/v1/tenants/{tenantId}/limits", operationId: "setTenantLimits", tags, security, summary: "Override a tenant's limits (null: back to the default)",
    request: { params: TenantIdParam, body: body(z.object({ maxConcurrent: limit.nullable().optional(), maxQueued: limit.nullable().optional() }).strict()) },
    responses: { 200: json("The tenant", TenantSchema), ...problemResponses(401, 404, 422, 503) },
  }),
  createClient: createRoute({
    method: "post", path: "/admin/v1/tenants/{tenantId}/clients", operationId: "createClient", tags, security, summary: "Create an API client; its secrets are shown only in this answer",
    request: { params: TenantIdParam, body: body(z.object({ name: z.string().min(1).max(200), scopes: z.array(z.enum(SCOPES)).min(1).optional() }).strict()) },
    responses: { 201: { ...json("The client with its secrets", CreatedClientSchema), headers: secretHeaders }, ...problemResponses(401, 404, 422, 503) },
  }),
  listClients: createRoute({
    method: "get", path: "/admin/v1/clients", operationId: "listClients", tags, security, summary: "List clients, optionally of one tenant",
    request: { query: z.object({ tenant: z.string().max(63).optional() }) },
    responses: { 200: json("Clients", z.object({ clients: z.array(ClientSchema) })), ...problemResponses(401, 404, 422, 503) },
  }),
  revokeClient: createRoute({
    method: "post", path: "/admin/v1/clients/{clientId}/revoke", operationId: "revokeClient", tags, security, summary: "Revoke a client and all its tokens",
    request: { params: ClientIdParam },
    responses: { 200: json("The revoked client", ClientSchema.extend({ tokensRevoked: z.number().int().min(0) }).openapi("RevokedClient")), ...problemResponses(401, 404, 503) },
  }),
  rotateSecret: createRoute({
    method: "post", path: "/admin/v1/clients/{clientId}/rotate-secret", operationId: "rotateSecret", tags, security,
    summary: "Rotate the webhook signing secret (with an overlap) or the client secret",
    request: {
      params: ClientIdParam,
      body: { required: false, content: { "application/json": { schema: z.object({ kind: z.enum(["webhook", "client"]).optional(), overlapSeconds: z.number().int().min(0).max(30 * 86_400).optional() }).strict() } } },
    },
    responses: { 200: { ...json("The new secret", RotatedSecretSchema), headers: secretHeaders }, ...problemResponses(401, 404, 422, 503) },
  }),
  redeliverExhausted: createRoute({
    method: "post", path: "/admin/v1/tenants/{tenantId}/callbacks/redeliver", operationId: "redeliverExhaustedCallbacks", tags, security,
    summary: "Redeliver every EXHAUSTED callback of a tenant last tried since a time",
    request: { params: TenantIdParam, body: body(z.object({ since: z.iso.datetime({ offset: true }) }).strict()) },
    responses: { 200: json("How many series were started", z.object({ redelivered: z.number().int().min(0) })), ...problemResponses(401, 404, 422, 503) },
  }),
  queueStats: createRoute({
    method: "get", path: "/admin/v1/queues", operationId: "getQueueStats", tags, security, summary: "Job counts of the jobs and callbacks queues, by state",
    responses: { 200: json("Counts per queue and state", z.object({ jobs: QueueCounts, callbacks: QueueCounts })), ...problemResponses(401, 503) },
  }),
  revokeTokens: createRoute({
    method: "post", path: "/admin/v1/tokens/revoke", operationId: "adminRevokeTokens", tags, security, summary: "Revoke a token, or every token of a client",
    request: { body: body(z.object({ token: z.string().min(1).optional(), clientId: z.string().min(1).optional() }).strict()) },
    responses: { 200: json("How many were revoked", z.object({ revoked: z.number().int().min(0) })), ...problemResponses(401, 404, 422, 503) },
  }),
};

/** The operators' HTTP API: the same operations as the `ricochet` CLI. Guarded in app.ts. */
export function registerAdminRoutes(app: OpenAPIHono<AppEnv>) {
  const admin = (c: Context<AppEnv>) => c.get("services").admin;
  app.openapi(routes.createTenant, async (c) => c.json(await admin(c).createTenant(c.req.valid("json")), 201));
  app.openapi(routes.listTenants, async (c) => c.json({ tenants: await admin(c).listTenants() }, 200));
  app.openapi(routes.setLimits, async (c) => c.json(await admin(c).setLimits(c.req.valid("param").tenantId, c.req.valid("json")), 200));
  app.openapi(routes.createClient, async (c) => {
    c.header("Cache-Control", "no-store");
    return c.json(await admin(c).createClient({ tenantId: c.req.valid("param").tenantId, ...c.req.valid("json") }), 201);
  });
  app.openapi(routes.listClients, async (c) => c.json({ clients: await admin(c).listClients(c.req.valid("query").tenant) }, 200));
  app.openapi(routes.revokeClient, async (c) => c.json(await admin(c).revokeClient(c.req.valid("param").clientId), 200));
  app.openapi(routes.rotateSecret, async (c) => {
    const { clientId } = c.req.valid("param");
    // No body means the defaults: rotate the webhook secret with the configured overlap.
    const { kind = "webhook", overlapSeconds } = c.req.valid("json") as { kind?: "webhook" | "client"; overlapSeconds?: number };
    c.header("Cache-Control", "no-store");
    const rotated = kind === "client" ? await admin(c).rotateClientSecret(clientId) : await admin(c).rotateWebhookSecret(clientId, overlapSeconds === undefined ? undefined : overlapSeconds * 1000);
    return c.json(rotated, 200);
  });
  app.openapi(routes.redeliverExhausted, async (c) =>
    c.json(await admin(c).redeliverExhausted(c.req.valid("param").tenantId, new Date(c.req.valid("json").since)), 200),
  );
  app.openapi(routes.queueStats, async (c) => c.json(await admin(c).queueStats(), 200));
  app.openapi(routes.revokeTokens, async (c) => c.json(await admin(c).revokeTokens(c.req.valid("json")), 200));
}
