import type { RedisConnection } from "../infra/redis.js";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";

/**
 * Slows down guessing of client secrets. Every failed client authentication counts against the
 * client id and against the source address (counters shared by all API processes in Redis, by
 * rate-limiter-flexible); past the limit the endpoint answers 429 with Retry-After *before* it
 * verifies anything, so guessing costs no scrypt and cannot exhaust the CPU. A success clears
 * the client id's count. Should Redis be away, counting continues per process in memory.
 */
export type CredentialThrottleOptions = {
  redis: RedisConnection;
  /** Queue prefix: keys live beside the queues' (a hash tag keeps them on one Cluster slot). */
  prefix: string;
  /** Failures per client id in `windowSeconds` before it is refused. */
  perClient: number;
  /** Failures per source address in `windowSeconds` before it is refused. */
  perAddress: number;
  windowSeconds: number;
};

export type CredentialThrottle = ReturnType<typeof createCredentialThrottle>;

export function createCredentialThrottle(options: CredentialThrottleOptions) {
  const limiter = (name: string, points: number) =>
    new RateLimiterRedis({
      storeClient: options.redis,
      keyPrefix: `${options.prefix}:oauth-failures-${name}`,
      points,
      duration: options.windowSeconds,
      insuranceLimiter: new RateLimiterMemory({ points, duration: options.windowSeconds }),
    });
  const byClient = limiter("client", options.perClient);
  const byAddress = limiter("address", options.perAddress);

  /** Seconds until `key` may try again, or 0 when it may now. */
  async function waitFor(rl: RateLimiterRedis, key: string, points: number): Promise<number> {
    const state = await rl.get(key).catch(() => null);
    return state && state.consumedPoints >= points ? Math.max(1, Math.ceil(state.msBeforeNext / 1000)) : 0;
  }

  return {
    /** Seconds the caller must wait before trying these credentials again (0: go ahead). */
    async retryAfter(clientId: string, address: string): Promise<number> {
      const [client, source] = await Promise.all([waitFor(byClient, clientId, options.perClient), waitFor(byAddress, address, options.perAddress)]);
      return Math.max(client, source);
    },
    async failed(clientId: string, address: string): Promise<void> {
      const swallow = (error: unknown) => {
        if (!(error instanceof RateLimiterRes)) throw error; // over the limit is expected here
      };
      await Promise.all([byClient.consume(clientId).catch(swallow), byAddress.consume(address).catch(swallow)]);
    },
    async succeeded(clientId: string): Promise<void> {
      await byClient.delete(clientId).catch(() => {});
    },
  };
}
