import type { RedisConnection } from "../infra/redis.js";

export type AttemptLeaseOptions = {
  redis: RedisConnection;
  prefix: string;
  lockMs: number;
  /** SWEEPER_GRACE: the sweeper looks at a series only once it has been in flight this long. */
  graceMs: number;
};

/**
 * A first callback attempt made in process has no BullMQ job, so it takes a lease instead: a
 * Redis key that lives `lockMs` and is renewed every `lockMs / 2` while the attempt runs, exactly
 * like a job's lock. The sweeper leaves a series with a live lease alone; once a crashed
 * worker's lease expires, the series is resumed at the next sweep. Recovery is therefore bounded
 * by SWEEPER_INTERVAL + JOB_LOCK_DURATION, as for any job, whatever CALLBACK_TIMEOUT is.
 *
 * The sweeper does not look at a series before it is SWEEPER_GRACE old, so the lease is taken
 * only half-way through the grace: an attempt answered sooner (nearly all of them) costs Redis
 * nothing, and a slower one holds the lease from then on, with half the grace to spare for clock
 * skew between processes. With no grace, it is taken at once.
 */
export function createAttemptLeases(options: AttemptLeaseOptions) {
  const key = (requestId: string, series: number) => `${options.prefix}:callback-lease:${requestId}.${series}`;
  const takeAfterMs = Math.floor(options.graceMs / 2);
  const renewEveryMs = Math.max(50, Math.floor(options.lockMs / 2));
  return {
    /** Holds the lease from half-way through the grace; the returned function gives it back. Redis being away is no reason not to deliver. */
    hold(requestId: string, series: number): () => void {
      const name = key(requestId, series);
      let taken = false;
      let renew: NodeJS.Timeout | undefined;
      const take = () => void options.redis.set(name, "1", "PX", options.lockMs).catch(() => undefined);
      const start = () => {
        taken = true;
        take();
        renew = setInterval(take, renewEveryMs);
        renew.unref();
      };
      let wait: NodeJS.Timeout | undefined;
      if (takeAfterMs > 0) {
        wait = setTimeout(start, takeAfterMs);
        wait.unref();
      } else start();
      return () => {
        clearTimeout(wait);
        clearInterval(renew);
        if (taken) void options.redis.del(name).catch(() => undefined);
      };
    },
    async held(requestId: string, series: number): Promise<boolean> {
      return (await options.redis.exists(key(requestId, series))) === 1;
    },
  };
}

export type AttemptLeases = ReturnType<typeof createAttemptLeases>;
