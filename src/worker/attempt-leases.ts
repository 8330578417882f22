import type { RedisConnection } from "../infra/redis.js";

/**
 * A first callback attempt made in process has no BullMQ job, so it takes a lease instead: a
 * Redis key that lives `lockMs` and is renewed every `lockMs / 2` while the attempt runs, exactly
 * like a job's lock. The sweeper leaves a series with a live lease alone; once a crashed
 * worker's lease expires, the series is resumed at the next sweep. Recovery is therefore bounded
 * by SWEEPER_INTERVAL + JOB_LOCK_DURATION, as for any job, whatever CALLBACK_TIMEOUT is.
 */
export function createAttemptLeases(options: { redis: RedisConnection; prefix: string; lockMs: number }) {
  const key = (requestId: string, series: number) => `${options.prefix}:callback-lease:${requestId}.${series}`;
  return {
    /** Takes the lease; the returned function gives it back. Redis being away is no reason not to deliver. */
    hold(requestId: string, series: number): () => void {
      const name = key(requestId, series);
      const take = () => options.redis.set(name, "1", "PX", options.lockMs).catch(() => undefined);
      void take();
      const renew = setInterval(() => void take(), Math.max(50, Math.floor(options.lockMs / 2)));
      renew.unref();
      return () => {
        clearInterval(renew);
        void options.redis.del(name).catch(() => undefined);
      };
    },
    async held(requestId: string, series: number): Promise<boolean> {
      return (await options.redis.exists(key(requestId, series))) === 1;
    },
  };
}

export type AttemptLeases = ReturnType<typeof createAttemptLeases>;
