import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createAttemptLeases } from "../src/worker/attempt-leases.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.js";

/** A real connection whose SET and DEL calls are written down (which keys, in order). */
function recordingRedis(redis: Redis) {
  const calls: string[] = [];
  const recorded = new Proxy(redis, {
    get(target, property, receiver) {
      if (property === "set" || property === "del") {
        return (key: string, ...rest: unknown[]) => {
          calls.push(`${property} ${key}`);
          return (target[property] as (...args: unknown[]) => Promise<unknown>).call(target, key, ...rest);
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { redis: recorded, calls };
}

describe("attempt leases", () => {
  const prefix = uniquePrefix();
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });
  const keyOf = (id: string) => `${prefix}:callback-lease:${id}.1`;

  it("is taken half-way through the grace: an attempt that ends sooner costs Redis nothing", async () => {
    const { redis: recorded, calls } = recordingRedis(redis);
    const leases = createAttemptLeases({ redis: recorded, prefix, lockMs: 10_000, graceMs: 200 });
    const quick = leases.hold("quick", 1);
    quick(); // answered before its lease was due
    const slow = leases.hold("slow", 1);
    // The slow attempt's lease is due after the quick one's would have been: once it is there,
    // the quick one's moment has passed too.
    await vi.waitFor(async () => expect(await leases.held("slow", 1)).toBe(true), { timeout: 5_000, interval: 10 });
    expect(await leases.held("quick", 1)).toBe(false);
    expect(await redis.pttl(keyOf("slow"))).toBeGreaterThan(5_000);
    slow();
    await vi.waitFor(async () => expect(await leases.held("slow", 1)).toBe(false), { timeout: 5_000, interval: 10 });
    expect(calls).toEqual([`set ${keyOf("slow")}`, `del ${keyOf("slow")}`]);
  });

  it("is taken at once when there is no grace, and renewed every half lock until given back", async () => {
    const { redis: recorded, calls } = recordingRedis(redis);
    const leases = createAttemptLeases({ redis: recorded, prefix, lockMs: 300, graceMs: 0 });
    const release = leases.hold("now", 1);
    expect(calls).toEqual([`set ${keyOf("now")}`]);
    expect(await leases.held("now", 1)).toBe(true); // same connection: the SET went first
    await vi.waitFor(() => expect(calls.length).toBeGreaterThanOrEqual(3), { timeout: 5_000, interval: 10 });
    // Renewed past its first lifetime: still held.
    expect(await leases.held("now", 1)).toBe(true);
    release();
    expect(calls.at(-1)).toBe(`del ${keyOf("now")}`);
    expect(await leases.held("now", 1)).toBe(false);
  });
});
