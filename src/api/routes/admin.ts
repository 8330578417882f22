import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { SCOPES } from "../../auth/scopes.js";
import type { AppEnv } from "../env.js";
import { problemResponses } from "../schemas.js";

const tags = ["Admin"];
const security = [{ adminToken: [] }];
const anyJson = (description: string) => ({ description, content: { "application/json": { schema: z.record(z.string(), z.unknown()) } } });
const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { "application/json": { schema } } });
const limit = z.number().int().min(1).max(10_000_000);

const TenantIdParam = z.object({ tenantId: z.string().max(63).openapi({ param: { name: "tenantId", in: "path" } }) });
const ClientIdParam = z.object({ clientId: z.string().max(100).openapi({ param: { name: "clientId", in: "path" } }) });

const routes = {
  createTenant: createRoute({
    method: "post", path: "/admin/v1/tenants", tags, security, summary: "Create a tenant",
    request: { body: body(z.object({ id: z.string(), name: z.string().min(1).max(200).optional(), maxConcurrent: limit.optional(), maxQueued: limit.optional() }).strict()) },
    responses: { 201: anyJson("The tenant"), ...problemResponses(401, 409, 422) },
  }),
  listTenants: createRoute({
    method: "get", path: "/admin/v1/tenants", tags, security, summary: "List tenants with their effective limits",
    responses: { 200: anyJson("Tenants"), ...problemResponses(401) },
  }),
  setLimits: createRoute({
    method: "patch", path: "/admin/v1/tenants/{tenantId}/limits", tags, security, summary: "Override a tenant's limits (null: back to the default)",
    request: { params: TenantIdParam, body: body(z.object({ maxConcurrent: limit.nullable().optional(), maxQueued: limit.nullable().optional() }).strict()) },
    responses: { 200: anyJson("The tenant"), ...problemResponses(401, 404, 422) },
  }),
  createClient: createRoute({
    method: "post", path: "/admin/v1/tenants/{tenantId}/clients", tags, security, summary: "Create an API client; its secrets are shown only in this answer",
    request: { params: TenantIdParam, body: body(z.object({ name: z.string().min(1).max(200), scopes: z.array(z.enum(SCOPES)).min(1).optional() }).strict()) },
    responses: { 201: anyJson("The client with clientSecret and webhookSecret"), ...problemResponses(401, 404, 422) },
  }),
  listClients: createRoute({
    method: "get", path: "/admin/v1/clients", tags, security, summary: "List clients, optionally of one tenant",
    request: { query: z.object({ tenant: z.string().max(63).optional() }) },
    responses: { 200: anyJson("Clients"), ...problemResponses(401, 404) },
  }),
  revokeClient: createRoute({
    method: "post", path: "/admin/v1/clients/{clientId}/revoke", tags, security, summary: "Revoke a client and all its tokens",
    request: { params: ClientIdParam },
    responses: { 200: anyJson("The revoked client"), ...problemResponses(401, 404) },
  }),
  rotateSecret: createRoute({
    method: "post", path: "/admin/v1/clients/{clientId}/rotate-secret", tags, security,
    summary: "Rotate the webhook signing secret (with an overlap) or the client secret",
    request: {
      params: ClientIdParam,
      body: { required: false, content: { "application/json": { schema: z.object({ kind: z.enum(["webhook", "client"]).optional(), overlapSeconds: z.number().int().min(0).max(30 * 86_400).optional() }).strict() } } },
    },
    responses: { 200: anyJson("The new secret"), ...problemResponses(401, 404, 422) },
  }),
  redeliverExhausted: createRoute({
    method: "post", path: "/admin/v1/tenants/{tenantId}/callbacks/redeliver", tags, security,
    summary: "Redeliver every EXHAUSTED callback of a tenant last tried since a time",
    request: { params: TenantIdParam, body: body(z.object({ since: z.iso.datetime({ offset: true }) }).strict()) },
    responses: { 200: anyJson("How many series were started"), ...problemResponses(401, 404, 422) },
  }),
  queueStats: createRoute({
    method: "get", path: "/admin/v1/queues", tags, security, summary: "Job counts of the jobs and callbacks queues, by state",
    responses: { 200: anyJson("Counts per queue and state"), ...problemResponses(401) },
  }),
  revokeTokens: createRoute({
    method: "post", path: "/admin/v1/tokens/revoke", tags, security, summary: "Revoke a token, or every token of a client",
    request: { body: body(z.object({ token: z.string().min(1).optional(), clientId: z.string().min(1).optional() }).strict()) },
    responses: { 200: anyJson("How many were revoked"), ...problemResponses(401, 422) },
  }),
};

/** The operators' HTTP API: the same operations as the `ricochet` CLI. Guarded in app.ts. */
export function registerAdminRoutes(app: OpenAPIHono<AppEnv>) {
  const admin = (c: { var: AppEnv["Variables"] }) => c.var.services.admin;
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
