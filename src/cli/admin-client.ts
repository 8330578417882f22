import { request } from "undici";
import { createLogger } from "../logger.js";
import { createRuntime } from "../runtime.js";
import type { AdminService } from "../services/admin.js";
import type { Config } from "../config.js";

/** The operations the CLI needs, over HTTP (admin API) or straight on the database. */
export type AdminOps = Pick<
  AdminService,
  "createTenant" | "listTenants" | "redeliverExhausted" | "queueStats" | "setLimits" | "createClient" | "listClients" | "revokeClient" | "rotateClientSecret" | "rotateWebhookSecret" | "revokeTokens"
> & { close(): Promise<void> };

/** Talks to a running server's admin API: what an operator without database access uses. */
export function httpAdmin(baseUrl: string, adminToken: string): AdminOps {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await request(new URL(path, baseUrl), {
      method: method as "GET",
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? null : JSON.stringify(body),
    }).catch((error: Error) => {
      throw new Error(`Cannot reach Ricochet at ${baseUrl} (${error.message}). Is it running? Set RICOCHET_URL or --url.`);
    });
    const text = await response.body.text();
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (response.statusCode >= 400) {
      const errors = Array.isArray(parsed.errors) ? ` (${(parsed.errors as { path: string; message: string }[]).map((e) => `${e.path}: ${e.message}`).join("; ")})` : "";
      throw new Error(`${response.statusCode} ${String(parsed.detail ?? parsed.title ?? text)}${errors}`);
    }
    return parsed as T;
  }
  const enc = encodeURIComponent;
  return {
    createTenant: (input) => call("POST", "/admin/v1/tenants", input),
    listTenants: async () => (await call<{ tenants: Awaited<ReturnType<AdminService["listTenants"]>> }>("GET", "/admin/v1/tenants")).tenants,
    setLimits: (id, limits) => call("PATCH", `/admin/v1/tenants/${enc(id)}/limits`, limits),
    createClient: ({ tenantId, ...rest }) => call("POST", `/admin/v1/tenants/${enc(tenantId)}/clients`, rest),
    listClients: async (tenantId) =>
      (await call<{ clients: Awaited<ReturnType<AdminService["listClients"]>> }>("GET", `/admin/v1/clients${tenantId ? `?tenant=${enc(tenantId)}` : ""}`)).clients,
    revokeClient: (clientId) => call("POST", `/admin/v1/clients/${enc(clientId)}/revoke`),
    rotateClientSecret: (clientId) => call("POST", `/admin/v1/clients/${enc(clientId)}/rotate-secret`, { kind: "client" }),
    rotateWebhookSecret: (clientId, overlapMs) =>
      call("POST", `/admin/v1/clients/${enc(clientId)}/rotate-secret`, { kind: "webhook", ...(overlapMs === undefined ? {} : { overlapSeconds: Math.round(overlapMs / 1000) }) }),
    revokeTokens: (input) => call("POST", "/admin/v1/tokens/revoke", input),
    queueStats: () => call("GET", "/admin/v1/queues"),
    redeliverExhausted: (tenantId, since) => call("POST", `/admin/v1/tenants/${enc(tenantId)}/callbacks/redeliver`, { since: since.toISOString() }),
    close: async () => {},
  };
}

/** Works on the database directly (and Redis, to broadcast revocations): for bootstrapping a deployment. */
export async function directAdmin(config: Config): Promise<AdminOps> {
  const runtime = await createRuntime(config, { logger: createLogger("warn"), roles: { api: false, worker: false } });
  const admin = runtime.services.admin;
  return {
    createTenant: admin.createTenant,
    listTenants: admin.listTenants,
    setLimits: admin.setLimits,
    createClient: admin.createClient,
    listClients: admin.listClients,
    revokeClient: admin.revokeClient,
    rotateClientSecret: admin.rotateClientSecret,
    rotateWebhookSecret: admin.rotateWebhookSecret,
    revokeTokens: admin.revokeTokens,
    redeliverExhausted: admin.redeliverExhausted,
    queueStats: admin.queueStats,
    close: () => runtime.close(),
  };
}
