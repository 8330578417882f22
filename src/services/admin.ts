import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { digestToken, hashSecret, newClientId, newClientSecret, newWebhookSecret } from "../auth/credentials.js";
import { isScope, SCOPES, type Scope } from "../auth/scopes.js";
import type { SecretBox } from "../auth/secret-box.js";
import type { CallbacksRepository } from "../db/callbacks.js";
import type { ClientsRepository } from "../db/clients.js";
import type { Queues } from "../infra/queues.js";
import type { PubSub } from "../infra/pubsub.js";
import { effectiveLimits, type Limits } from "../core/limits.js";
import type { ApiClientRow, TenantRow } from "../db/schema.js";
import type { TenantsRepository } from "../db/tenants.js";
import type { TokensRepository } from "../db/tokens.js";
import type { Clock } from "../shared/clock.js";
import { conflict, invalid, notFound } from "../shared/errors.js";
import type { OAuthService } from "./oauth.js";
import type { QueueControl } from "./queue-control.js";

type Deps = {
  tenants: TenantsRepository;
  callbacks: CallbacksRepository;
  queues: Queues;
  queueControl: QueueControl;
  clients: ClientsRepository;
  tokens: TokensRepository;
  oauth: OAuthService;
  secretBox: SecretBox;
  clock: Clock;
  logger: Logger;
  defaults: Limits;
  secretRotationOverlapMs: number;
  pubsub: PubSub;
};

const REDELIVER_PAGE = 1_000;
const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export type TenantView = ReturnType<typeof tenantView>;
export type ClientView = ReturnType<typeof clientView>;

const tenantView = (row: TenantRow, defaults: Deps["defaults"]) => ({
  id: row.id,
  name: row.name,
  limits: {
    ...effectiveLimits(row, defaults),
    maxConcurrentOverridden: row.maxConcurrent !== null,
    maxQueuedOverridden: row.maxQueued !== null,
  },
  createdAt: row.createdAt.toISOString(),
});

const clientView = (row: ApiClientRow) => ({
  clientId: row.id,
  tenantId: row.tenantId,
  name: row.name,
  scopes: row.scopes,
  createdAt: row.createdAt.toISOString(),
  revokedAt: row.revokedAt?.toISOString() ?? null,
});

/** Operator operations, shared by the admin HTTP API and the `ricochet` CLI. */
export function adminService(deps: Deps) {
  const { tenants, clients, tokens, clock } = deps;

  async function requireClient(clientId: string): Promise<ApiClientRow> {
    const client = await clients.get(clientId);
    if (!client) throw notFound(`Client ${clientId}`);
    return client;
  }

  return {
    async createTenant(input: { id: string; name?: string | undefined; maxConcurrent?: number | undefined; maxQueued?: number | undefined }) {
      if (!TENANT_ID.test(input.id)) {
        throw invalid("Invalid tenant id", [{ path: "id", message: "lowercase letters, digits, - and _, at most 63, starting with a letter or digit" }]);
      }
      const row = await tenants.insert({
        id: input.id,
        name: input.name ?? input.id,
        maxConcurrent: input.maxConcurrent ?? null,
        maxQueued: input.maxQueued ?? null,
        createdAt: clock.now(),
      });
      if (!row) throw conflict(`Tenant ${input.id} already exists`);
      deps.logger.info({ tenantId: row.id }, "tenant created");
      return tenantView(row, deps.defaults);
    },

    listTenants: async () => (await tenants.list()).map((row) => tenantView(row, deps.defaults)),

    async getTenant(id: string) {
      const row = await tenants.get(id);
      if (!row) throw notFound(`Tenant ${id}`);
      return tenantView(row, deps.defaults);
    },

    /** `null` returns a limit to the configured default. */
    async setLimits(id: string, limits: { maxConcurrent?: number | null | undefined; maxQueued?: number | null | undefined }) {
      const changes = Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
      if (Object.keys(changes).length === 0) {
        throw invalid("Nothing to change", [{ path: "maxConcurrent", message: "give maxConcurrent and/or maxQueued" }]);
      }
      const row = await tenants.setLimits(id, changes);
      if (!row) throw notFound(`Tenant ${id}`);
      deps.logger.info({ tenantId: id, limits: changes }, "tenant limits set");
      return tenantView(row, deps.defaults);
    },

    /** Creates a client; its secrets are in this answer and nowhere else, ever. */
    async createClient(input: { tenantId: string; name: string; scopes?: string[] | undefined }) {
      if (!(await tenants.get(input.tenantId))) throw notFound(`Tenant ${input.tenantId}`);
      const scopes = input.scopes ?? [...SCOPES];
      const unknown = scopes.filter((scope) => !isScope(scope));
      if (unknown.length || scopes.length === 0) {
        throw invalid("Invalid scopes", [{ path: "scopes", message: `one or more of: ${SCOPES.join(", ")}` }]);
      }
      const clientSecret = newClientSecret();
      const webhookSecret = newWebhookSecret();
      const now = clock.now();
      const clientId = newClientId();
      const row = await clients.insert(
        { id: clientId, tenantId: input.tenantId, name: input.name, secretHash: await hashSecret(clientSecret), scopes: scopes as Scope[], createdAt: now },
        { id: randomUUID(), clientId, secretEncrypted: deps.secretBox.seal(webhookSecret), createdAt: now },
      );
      deps.logger.info({ clientId: row.id, tenantId: row.tenantId }, "client created");
      return { ...clientView(row), clientSecret, webhookSecret };
    },

    async listClients(tenantId?: string) {
      if (tenantId && !(await tenants.get(tenantId))) throw notFound(`Tenant ${tenantId}`);
      return (await clients.list(tenantId)).map(clientView);
    },

    /** Revokes the client and every token it holds, effective within TOKEN_CACHE_TTL everywhere. */
    async revokeClient(clientId: string) {
      await requireClient(clientId);
      const now = clock.now();
      await clients.revoke(clientId, now);
      const digests = await tokens.revokeAllOfClient(clientId, now);
      await deps.oauth.forget(digests);
      deps.logger.info({ clientId, tokens: digests.length }, "client revoked");
      return { ...clientView((await clients.get(clientId))!), tokensRevoked: digests.length };
    },

    /** A new client_secret; the old one stops working at once (issued tokens stay valid). */
    async rotateClientSecret(clientId: string) {
      await requireClient(clientId);
      const clientSecret = newClientSecret();
      await clients.setSecretHash(clientId, await hashSecret(clientSecret));
      deps.logger.info({ clientId }, "client secret rotated");
      return { clientId, clientSecret };
    },

    /** A new webhook signing secret; the previous one keeps signing alongside it for the overlap. */
    async rotateWebhookSecret(clientId: string, overlapMs = deps.secretRotationOverlapMs) {
      await requireClient(clientId);
      const now = clock.now();
      const webhookSecret = newWebhookSecret();
      const previousValidUntil = new Date(now.getTime() + overlapMs);
      await clients.rotateSigningSecret({ id: randomUUID(), clientId, secretEncrypted: deps.secretBox.seal(webhookSecret), createdAt: now }, previousValidUntil);
      await deps.pubsub.publishSecretsRotated(clientId);
      deps.logger.info({ clientId, previousValidUntil }, "webhook signing secret rotated");
      return { clientId, webhookSecret, previousValidUntil: previousValidUntil.toISOString() };
    },

    /** The secrets that sign a client's callbacks now, newest last. */
    async signingSecrets(clientId: string): Promise<string[]> {
      const rows = await clients.activeSigningSecrets(clientId, clock.now());
      return rows.map((row) => deps.secretBox.open(row.secretEncrypted));
    },

    /** Starts a new attempt series for every EXHAUSTED callback of a tenant last tried at or after `since`. */
    async redeliverExhausted(tenantId: string, since: Date) {
      if (!(await tenants.get(tenantId))) throw notFound(`Tenant ${tenantId}`);
      let redelivered = 0;
      // In pages: one statement starts a page of series, one addBulk enqueues them. If an enqueue
      // fails, the sweeper finds the PENDING series.
      let afterId: string | undefined;
      for (;;) {
        const started = await deps.callbacks.startSeriesForExhausted(tenantId, since, clock.now(), REDELIVER_PAGE, afterId);
        if (started.length === 0) break;
        afterId = started.reduce((last, { id }) => (id > last ? id : last), started[0]!.id);
        redelivered += started.length;
        await deps.queues.enqueueCallbacks(started).catch((error: unknown) => deps.logger.warn({ err: error }, "could not enqueue redeliveries; the sweeper will"));
        if (started.length < REDELIVER_PAGE) break;
      }
      deps.logger.info({ tenantId, since, redelivered }, "exhausted callbacks redelivered");
      return { redelivered };
    },

    /** How many jobs each queue holds, by state: what operators watch. */
    queueStats: () => deps.queueControl.counts(),

    /** Revokes one token (by its value) or every token of a client. */
    async revokeTokens(input: { token?: string | undefined; clientId?: string | undefined }) {
      const now = clock.now();
      let digests: string[];
      if (input.token) {
        digests = await tokens.revokeByDigest(digestToken(input.token), now);
      } else if (input.clientId) {
        await requireClient(input.clientId);
        digests = await tokens.revokeAllOfClient(input.clientId, now);
      } else {
        throw invalid("Say which tokens to revoke", [{ path: "token", message: "give token or clientId" }]);
      }
      await deps.oauth.forget(digests);
      deps.logger.info({ count: digests.length, clientId: input.clientId }, "tokens revoked by an operator");
      return { revoked: digests.length };
    },
  };
}

export type AdminService = ReturnType<typeof adminService>;
