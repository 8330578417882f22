import { expect } from "vitest";
import { createTestDatabase } from "../helpers/db.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { cleanupStack, count, countingPool, recordRow, serviceEnv, settle, standardNotes, startCluster, type Counts, type Settlement } from "./harness.js";
import { startCountingReceiver } from "./receiver.js";
import { KNOBS } from "./knobs.js";
import { startTraffic, type Traffic } from "./traffic.js";

export type Cleanup = ReturnType<typeof cleanupStack>;

/**
 * What most scenarios share: a fresh database (on the shared PostgreSQL unless one is named), a
 * queue prefix of its own, a counting receiver, and the Ricochet processes' environment. Every
 * piece is registered with `cleanup`, so it goes away even when the scenario fails half-way.
 */
export async function setUpScenario(
  cleanup: Cleanup,
  options: {
    databaseUrl?: string;
    redisUrl?: string;
    /** Another Redis deployment (Sentinel) in place of REDIS_URL; it is removed whole by its scenario. */
    redisEnv?: Record<string, string>;
    holdMs?: number;
    env?: Record<string, string>;
  } = {},
) {
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    const db = await createTestDatabase("postgres");
    cleanup.add("drop the test database", () => db.drop());
    // The test process only counts: its own pool is not needed once the schema is there.
    databaseUrl = db.url!;
  }
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const prefix = uniquePrefix();
  if (!options.redisEnv) cleanup.add("delete the queue prefix's keys", () => deleteKeys(prefix, redisUrl));
  const receiver = await startCountingReceiver({ holdMs: options.holdMs });
  cleanup.add("close the receiver", () => receiver.close());
  const cluster = await startCluster(serviceEnv({ DATABASE_URL: databaseUrl, ...(options.redisEnv ?? { REDIS_URL: redisUrl }), QUEUE_PREFIX: prefix, ...options.env }));
  cleanup.add("stop every Ricochet process", () => cluster.stop());
  const pool = countingPool(databaseUrl);
  cleanup.add("close the counting pool", () => pool.end());
  return { databaseUrl, redisUrl, prefix, receiver, cluster, pool };
}

/**
 * The usual stack under load: an `api` and a `worker` process, a client whose webhook secret the
 * receiver checks, and `echo` submits with a callback at KNOBS.rate (stopped by `cleanup`).
 */
export async function startServiceWithTraffic(ctx: Awaited<ReturnType<typeof setUpScenario>>, cleanup: Cleanup, echo: { delayMs?: number } = {}) {
  const { cluster, receiver } = ctx;
  const api = await cluster.spawn("api");
  const worker = await cluster.spawn("worker");
  const client = await cluster.createClient();
  receiver.useSecret(client.webhookSecret);
  const traffic = startTraffic({
    url: () => cluster.apiUrl,
    token: client.token,
    ratePerSecond: KNOBS.rate,
    body: (n) => ({ action: "echo", input: { data: n, ...echo }, callbackUrl: receiver.url() }),
  });
  cleanup.add("stop the traffic", () => traffic.stop());
  return { api, worker, client, traffic };
}

/** RUNNING requests claimed since `since` (a run on the current worker). */
export async function runningSince(pool: { query: (text: string, params: unknown[]) => Promise<{ rows: { n: number }[] }> }, since: number): Promise<number> {
  const { rows } = await pool.query("SELECT count(*)::int AS n FROM async_requests WHERE status = 'RUNNING' AND started_at >= $1", [new Date(since)]);
  return rows[0]?.n ?? 0;
}

/** Settles, counts, records the row and checks what every scenario must hold. */
export async function finishScenario(input: {
  order: number;
  scenario: string;
  startedAt: number;
  ctx: Awaited<ReturnType<typeof setUpScenario>>;
  traffic: Traffic[];
  expectExhausted?: Set<string>;
  notes?: (counts: Counts, settlement: Settlement) => string[];
  details?: string[];
  /** How long to wait for everything to settle (KNOBS.settleMs unless given). */
  settleMs?: number;
}): Promise<{ counts: Counts; settlement: Settlement }> {
  const { ctx } = input;
  const settlement = await settle(ctx.pool, ctx.receiver, { expectExhausted: input.expectExhausted, deadlineMs: input.settleMs });
  const accepted = input.traffic.flatMap((t) => [...t.accepted.keys()]);
  const counts = count({ settlement, accepted, receiver: ctx.receiver, traffic: input.traffic, expectExhausted: input.expectExhausted });
  const unexpected = ctx.cluster.unexpectedExits();
  const notes = [...(input.notes?.(counts, settlement) ?? []), ...standardNotes(counts, settlement)];
  if (unexpected.length) notes.unshift(`${unexpected.length} process(es) EXITED unexpectedly`);
  recordRow({
    order: input.order,
    scenario: input.scenario,
    accepted: counts.accepted,
    refused: counts.refused,
    completed: counts.completed,
    delivered: counts.delivered,
    duplicates: counts.duplicates,
    lost: counts.lost,
    notes: notes.join("; "),
    durationS: (Date.now() - input.startedAt) / 1000,
    details: input.details,
  });

  expect(unexpected, "no Ricochet process may exit unless the test killed it").toEqual([]);
  expect(counts.lostIds.slice(0, 10), "nothing accepted may be lost").toEqual([]);
  expect(counts.lost).toBe(0);
  expect(counts.accepted).toBeGreaterThan(0);
  expect(counts.completed).toBe(counts.accepted);
  expect(Object.fromEntries(counts.statuses), "echo never fails: every accepted request ends COMPLETED").toEqual({ COMPLETED: counts.accepted });
  expect(counts.refusedWithoutRetryAfter, "every 503 carries Retry-After").toEqual([]);
  expect(counts.badSignatures, "every delivered callback is signed with the client's secret").toBe(0);
  expect(counts.extraUnsettled, "rows written without a 202 finish too (the sweeper)").toBe(0);
  expect(settlement.settled, "everything settled before the deadline").toBe(true);
  return { counts, settlement };
}
