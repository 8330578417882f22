import type { Clock } from "../shared/clock.js";

/**
 * Webhook signing secrets, cached per process: a delivery would otherwise read and decrypt them
 * on every attempt. An entry lives at most `ttlMs`; a rotation evicts it at once in every
 * process (broadcast over Redis), so a rotated secret is used by the next attempt, and within
 * `ttlMs` even if the broadcast is lost. Concurrent misses for one client share one load.
 */
export function createSigningSecretCache(options: { load(clientId: string): Promise<string[]>; ttlMs: number; clock: Clock; maxEntries?: number }) {
  const maxEntries = options.maxEntries ?? 10_000;
  const entries = new Map<string, { secrets: Promise<string[]>; loadedAt: number }>();
  return {
    get(clientId: string): Promise<string[]> {
      const now = options.clock.now().getTime();
      const entry = entries.get(clientId);
      if (entry && now - entry.loadedAt < options.ttlMs && now >= entry.loadedAt) return entry.secrets;
      const secrets = options.load(clientId);
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(clientId, { secrets, loadedAt: now });
      // A failed load is not cached: the next attempt asks the database again.
      secrets.catch(() => entries.get(clientId)?.secrets === secrets && entries.delete(clientId));
      return secrets;
    },
    invalidate(clientId: string): void {
      entries.delete(clientId);
    },
  };
}

export type SigningSecretCache = ReturnType<typeof createSigningSecretCache>;
