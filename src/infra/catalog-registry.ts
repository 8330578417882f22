/**
 * The processes of one deployment must offer the same actions: an API that accepts an action no
 * worker has would leave requests waiting. Each process writes its catalog's fingerprint to one
 * Redis hash under the queue prefix (refreshed every `refreshMs`), and compares it with the other
 * live processes' at start-up and at every refresh. A difference is reported (an error log naming
 * the actions that differ, and the gauge ricochet_catalog_mismatched_processes) — during a
 * rolling deploy it is expected for a while; it is never a reason to fail a request.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { RedisConnection } from "./redis.js";

type Entry = { fingerprint: string; actions: string[]; roles: string[]; seenAt: number };

export function createCatalogRegistry(deps: {
  redis: RedisConnection;
  prefix: string;
  fingerprint: string;
  actions: string[];
  roles: string[];
  logger: Logger;
  onMismatches(count: number): void;
  refreshMs?: number;
}) {
  const refreshMs = deps.refreshMs ?? 30_000;
  const key = `${deps.prefix}:catalogs`;
  const me = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const reported = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  async function refresh(): Promise<void> {
    const mine: Entry = { fingerprint: deps.fingerprint, actions: deps.actions, roles: deps.roles, seenAt: Date.now() };
    await deps.redis.hset(key, me, JSON.stringify(mine));
    const all = await deps.redis.hgetall(key);
    let mismatched = 0;
    for (const [member, raw] of Object.entries(all)) {
      if (member === me) continue;
      const other = JSON.parse(raw) as Entry;
      if (Date.now() - other.seenAt > 3 * refreshMs) {
        // Gone for long (a crash left its entry): forget it.
        if (Date.now() - other.seenAt > 20 * refreshMs) await deps.redis.hdel(key, member);
        continue;
      }
      if (other.fingerprint === deps.fingerprint) continue;
      mismatched++;
      if (reported.has(`${member}/${other.fingerprint}`)) continue;
      reported.add(`${member}/${other.fingerprint}`);
      deps.logger.error(
        {
          process: member,
          itsRoles: other.roles,
          onlyHere: deps.actions.filter((a) => !other.actions.includes(a)),
          onlyThere: other.actions.filter((a) => !deps.actions.includes(a)),
          sameNamesDifferentDefinitions: deps.actions.every((a) => other.actions.includes(a)) && other.actions.every((a) => deps.actions.includes(a)),
        },
        "another process of this deployment offers a different action catalog (see ACTIONS, BUILTIN_ACTIONS); requests for an action a worker lacks wait for one that has it",
      );
    }
    deps.onMismatches(mismatched);
  }

  const safeRefresh = () => refresh().catch((error: unknown) => deps.logger.warn({ err: error }, "could not compare action catalogs; will try again"));

  return {
    async start(): Promise<void> {
      await safeRefresh();
      timer = setInterval(() => void safeRefresh(), refreshMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      await deps.redis.hdel(key, me).catch(() => undefined);
    },
    refresh,
  };
}
