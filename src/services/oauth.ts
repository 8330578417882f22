import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { dummySecretHash, digestToken, newAccessToken, verifySecret } from "../auth/credentials.js";
import { OAuthError } from "../auth/oauth-error.js";
import { isScope, SCOPES, type Scope } from "../auth/scopes.js";
import type { CredentialThrottle } from "../auth/credential-throttle.js";
import type { ClientsRepository } from "../db/clients.js";
import type { TokenLookup, TokensRepository } from "../db/tokens.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Clock } from "../shared/clock.js";
import { AppError } from "../shared/errors.js";
import type { Caller } from "./caller.js";

export type ClientCredentials = {
  clientId: string;
  clientSecret: string;
  usedBasic: boolean;
  /** Where the attempt comes from (the TCP peer), for the guessing throttle. */
  address?: string | undefined;
};

/** `expires_in` is left out for a token that never expires: libraries read 0 as "already expired". */
export type TokenResponse = { token_type: "Bearer"; access_token: string; expires_in?: number; scope: string };

type Deps = {
  clients: ClientsRepository;
  tokens: TokensRepository;
  pubsub: PubSub;
  clock: Clock;
  logger: Logger;
  /** 0: tokens never expire. */
  tokenTtlMs: number;
  tokenCacheTtlMs: number;
  throttle: CredentialThrottle;
};

const CACHE_MAX = 10_000;
const REALM = 'Bearer realm="ricochet"';

/** OAuth2 client credentials: issues, revokes and checks bearer tokens. */
export function oauthService(deps: Deps) {
  const { clients, tokens, clock } = deps;
  // Token look-ups cached per process for at most TOKEN_CACHE_TTL; revocations also evict at once.
  const cache = new Map<string, { lookup: TokenLookup; cachedAt: number }>();
  deps.pubsub.onTokenRevoked((digest) => cache.delete(digest));

  async function authenticateClient(credentials: ClientCredentials) {
    const address = credentials.address ?? "unknown";
    const wait = await deps.throttle.retryAfter(credentials.clientId, address);
    if (wait > 0) {
      deps.logger.warn({ clientId: credentials.clientId, address }, "client authentication throttled after repeated failures");
      throw new AppError("limit_exceeded", `Too many failed client authentications; retry in ${wait} s`, { retryAfter: wait });
    }
    const client = await clients.get(credentials.clientId);
    // Always pay for one scrypt, so an unknown client id takes as long as a wrong secret.
    const valid = await verifySecret(credentials.clientSecret, client?.secretHash ?? (await dummySecretHash()));
    if (!client || !valid || client.revokedAt) {
      await deps.throttle.failed(credentials.clientId, address);
      throw new OAuthError("invalid_client", "Client authentication failed", credentials.usedBasic);
    }
    await deps.throttle.succeeded(credentials.clientId);
    return client;
  }

  const unauthorized = (description: string, error = "invalid_token") =>
    new AppError("unauthorized", description, {
      headers: { "www-authenticate": `${REALM}, error="${error}", error_description="${description}"` },
    });

  return {
    async issueToken(credentials: ClientCredentials, scope: string | undefined): Promise<TokenResponse> {
      const client = await authenticateClient(credentials);
      const allowed = client.scopes.filter(isScope);
      let granted: Scope[];
      if (scope === undefined || scope.trim() === "" || scope.trim() === "*") {
        granted = allowed;
      } else {
        const asked = [...new Set(scope.trim().split(/ +/))];
        const unknown = asked.filter((item) => !isScope(item));
        if (unknown.length) throw new OAuthError("invalid_scope", `Unknown scope ${unknown.join(", ")}; use * or any of: ${SCOPES.join(" ")}`);
        const denied = asked.filter((item) => !allowed.includes(item as Scope));
        if (denied.length) throw new OAuthError("invalid_scope", `This client may not have the scope ${denied.join(", ")}`);
        granted = asked as Scope[];
      }
      const token = newAccessToken();
      const now = clock.now();
      await tokens.insert({
        id: randomUUID(),
        tokenDigest: digestToken(token),
        clientId: client.id,
        tenantId: client.tenantId,
        scopes: granted,
        createdAt: now,
        expiresAt: deps.tokenTtlMs > 0 ? new Date(now.getTime() + deps.tokenTtlMs) : null,
      });
      deps.logger.info({ clientId: client.id, tenantId: client.tenantId, scopes: granted }, "token issued");
      const expiresIn = Math.floor(deps.tokenTtlMs / 1000);
      return { token_type: "Bearer", access_token: token, ...(deps.tokenTtlMs > 0 ? { expires_in: Math.max(1, expiresIn) } : {}), scope: granted.join(" ") };
    },

    /**
     * RFC 7009: the client revokes one of its own tokens. An unknown (or already revoked) token
     * is not an error (§2.2); another client's token is refused and stays valid (§2.1).
     */
    async revokeToken(credentials: ClientCredentials, token: string): Promise<void> {
      const client = await authenticateClient(credentials);
      const digest = digestToken(token);
      const revoked = await tokens.revokeByDigest(digest, clock.now(), client.id);
      if (revoked.length) {
        await this.forget(revoked);
        deps.logger.info({ clientId: client.id }, "token revoked by its client");
        return;
      }
      const found = await tokens.findByDigest(digest);
      if (found && found.clientId !== client.id) throw new OAuthError("unauthorized_client", "The token was issued to another client");
    },

    /** Drops revoked digests from every API process's cache. */
    async forget(digests: string[]): Promise<void> {
      for (const digest of digests) {
        cache.delete(digest);
        await deps.pubsub.publishTokenRevoked(digest);
      }
    },

    /** Resolves a bearer token to its caller, or throws 401 (with WWW-Authenticate) / 403. */
    async authenticate(authorization: string | undefined, requiredScope: Scope): Promise<Caller> {
      const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
      if (!match) {
        throw new AppError("unauthorized", "Send Authorization: Bearer <token> (get one from POST /oauth/token)", {
          headers: { "www-authenticate": REALM },
        });
      }
      const digest = digestToken(match[1]!);
      const now = clock.now();
      let entry = cache.get(digest);
      if (!entry || now.getTime() - entry.cachedAt >= deps.tokenCacheTtlMs || now.getTime() < entry.cachedAt) {
        cache.delete(digest);
        const lookup = await tokens.findByDigest(digest);
        if (!lookup) throw unauthorized("The access token is unknown");
        entry = { lookup, cachedAt: now.getTime() };
        if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
        cache.set(digest, entry);
        void tokens.touch(lookup.id, now).catch((error: unknown) => deps.logger.warn({ err: error }, "could not record token use"));
      }
      const { lookup } = entry;
      if (lookup.revokedAt || lookup.clientRevokedAt) throw unauthorized("The access token has been revoked");
      if (lookup.expiresAt && lookup.expiresAt.getTime() <= now.getTime()) throw unauthorized("The access token has expired");
      if (!lookup.scopes.includes(requiredScope)) {
        throw new AppError("forbidden", `This token lacks the "${requiredScope}" scope`, {
          headers: { "www-authenticate": `${REALM}, error="insufficient_scope", scope="${requiredScope}"` },
        });
      }
      return { tenantId: lookup.tenantId, clientId: lookup.clientId };
    },
  };
}

export type OAuthService = ReturnType<typeof oauthService>;
