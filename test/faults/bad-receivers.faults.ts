import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { cleanupStack, KNOBS, settle } from "./harness.js";
import { EXPECTED_ERROR_CLASS, startBadReceiver, type BadKind, type BadReceiver } from "./bad-receivers.js";
import { sampleRss, until } from "./infra.js";
import { finishScenario, setUpScenario } from "./scenario.js";
import { startTraffic, type Traffic } from "./traffic.js";

const KINDS: BadKind[] = ["hang", "trickle", "ten-mb", "close-mid-response", "garbage"];
/** Callbacks per bad receiver: more than CALLBACK_ORIGIN_CONCURRENCY (10), so each origin's cap is reached. */
const PER_BAD_RECEIVER = 12;
const HEALTHY_PER_PHASE = 100;
const RETRY_DELAYS = "200ms,400ms,800ms"; // 4 attempts: enough to show every attempt fails the same way
/** The service's delivery slots (its defaults: the scenario does not override them). */
const defaults = loadConfig({});
const SLOTS = { total: defaults.callbackConcurrency, perOrigin: defaults.callbackOriginConcurrency };
/** Enough hanging origins to hold every slot, each with a couple of callbacks more than its cap. */
const HANGING_ORIGINS = Math.ceil(SLOTS.total / SLOTS.perOrigin);
const PER_HANGING_ORIGIN = SLOTS.perOrigin + 2;

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe("fault: bad receivers next to a healthy one", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("6. receivers that hang, trickle, send 10 MB, close mid-response or speak garbage: the healthy receiver keeps getting every callback, the bad ones end EXHAUSTED with the right error class, the worker's memory stays bounded", async () => {
    const startedAt = Date.now();
    const ctx = await setUpScenario(cleanup, { env: { CALLBACK_RETRY_DELAYS: RETRY_DELAYS } });
    const { cluster, receiver, pool } = ctx;
    await cluster.spawn("api");
    const worker = await cluster.spawn("worker");
    const client = await cluster.createClient();
    receiver.useSecret(client.webhookSecret);
    const rss = sampleRss(worker.child.pid!);
    cleanup.add("stop sampling RSS", () => rss.stop());

    const bad: BadReceiver[] = [];
    for (const kind of KINDS) {
      const server = await startBadReceiver(kind);
      cleanup.add(`close the ${kind} receiver`, () => server.close());
      bad.push(server);
    }

    const healthyPhase = async (label: string): Promise<Traffic> => {
      const traffic = startTraffic({
        url: () => cluster.apiUrl,
        token: client.token,
        ratePerSecond: KNOBS.rate,
        body: (n) => ({ action: "echo", input: { data: `${label}-${n}` }, callbackUrl: receiver.url() }),
        total: HEALTHY_PER_PHASE,
      });
      cleanup.add(`stop the ${label} traffic`, () => traffic.stop());
      await traffic.waitFor(`${HEALTHY_PER_PHASE} healthy submits answered`, () => traffic.answered >= HEALTHY_PER_PHASE);
      await traffic.stop();
      return traffic;
    };
    const latencies = async (traffic: Traffic) => {
      const ids = [...traffic.accepted.keys()];
      const { rows } = await pool.query<{ id: string; finished_at: Date }>("SELECT id, finished_at FROM async_requests WHERE id = ANY($1::uuid[])", [ids]);
      return rows.flatMap((row) => {
        const received = receiver.deliveredAt(row.id);
        return received === undefined ? [] : [received - row.finished_at.getTime()];
      });
    };

    // Baseline: the healthy receiver alone.
    const baseline = await healthyPhase("baseline");
    const baselineSettled = await settle(pool, receiver);
    expect(baselineSettled.settled).toBe(true);
    const baselineMaxRss = rss.maxMb;

    /** Callbacks to each of `servers`, submitted as fast as the API takes them. */
    const submitBad = async (label: string, servers: BadReceiver[], perServer = PER_BAD_RECEIVER): Promise<Traffic> => {
      const traffic = startTraffic({
        url: () => cluster.apiUrl,
        token: client.token,
        ratePerSecond: 200,
        body: (n) => ({ action: "echo", input: { data: `${label}-${n}` }, callbackUrl: servers[n % servers.length]!.url }),
        total: perServer * servers.length,
      });
      cleanup.add(`stop the ${label} traffic`, () => traffic.stop());
      await traffic.waitFor(`every ${label} callback submitted`, () => traffic.answered >= perServer * servers.length);
      await traffic.stop();
      return traffic;
    };

    // The bad receivers' callbacks first, then the healthy ones while those are being attempted.
    const badTraffic = await submitBad("bad", bad);
    // Start the healthy traffic once the slow receivers hold attempts (their origins' slots are taken).
    const slow = bad.filter((b) => b.kind === "hang" || b.kind === "trickle");
    await until("the hanging and trickling receivers hold attempts", () => slow.reduce((n, b) => n + b.open, 0) >= 15, 30_000, 10);
    const withBad = await healthyPhase("with-bad");
    const badIds = new Set(badTraffic.accepted.keys());
    // Settle first (every healthy callback delivered, every bad one EXHAUSTED), then measure.
    expect((await settle(pool, receiver, { expectExhausted: badIds })).settled).toBe(true);

    // Then as many hanging receivers as it takes to fill every delivery slot of the worker
    // (CALLBACK_CONCURRENCY / CALLBACK_ORIGIN_CONCURRENCY, the service's defaults): measured, not asserted.
    const hanging: BadReceiver[] = [];
    for (let i = 0; i < HANGING_ORIGINS; i++) {
      const server = await startBadReceiver("hang");
      cleanup.add("close a hanging receiver", () => server.close());
      hanging.push(server);
    }
    const hangTraffic = await submitBad("hang-all", hanging, PER_HANGING_ORIGIN);
    // Start the healthy traffic once they hold (nearly) every slot; how many they held is reported.
    let heldSlots = 0;
    await until(
      "the hanging receivers hold nearly every delivery slot",
      () => (heldSlots = hanging.reduce((n, b) => n + b.open, 0)) >= 0.9 * SLOTS.total,
      15_000,
      10,
    ).catch(() => {});
    const withHanging = await healthyPhase("with-hanging");
    const hangIds = new Set(hangTraffic.accepted.keys());
    const expectExhausted = new Set([...badIds, ...hangIds]);
    await settle(pool, receiver, { expectExhausted });
    rss.stop();

    // Each bad receiver's callbacks: EXHAUSTED after every attempt, every attempt failed with its class.
    const { rows: attempts } = await pool.query<{ url: string; error_class: string | null; delivered: boolean; n: number; max_body: number | null; message: string | null }>(
      `SELECT a.url, a.error_class, a.delivered, count(*)::int AS n, max(length(a.response_body))::int AS max_body, min(a.error_message) AS message
         FROM callback_attempts a JOIN async_requests r ON r.id = a.request_id
        WHERE r.id = ANY($1::uuid[]) GROUP BY 1, 2, 3 ORDER BY 1, 2`,
      [[...badIds]],
    );
    const { rows: finals } = await pool.query<{ callback_url: string; callback_status: string; attempts: number; n: number }>(
      `SELECT callback_url, callback_status, callback_attempts AS attempts, count(*)::int AS n FROM async_requests
        WHERE id = ANY($1::uuid[]) GROUP BY 1, 2, 3 ORDER BY 1`,
      [[...badIds]],
    );
    const baseLat = await latencies(baseline);
    const badLat = await latencies(withBad);
    const hangLat = await latencies(withHanging);
    const { rows: hangFinals } = await pool.query<{ callback_status: string; error_class: string; attempts: number; n: number }>(
      `SELECT r.callback_status, a.error_class, r.callback_attempts AS attempts, count(DISTINCT r.id)::int AS n
         FROM async_requests r JOIN callback_attempts a ON a.request_id = r.id
        WHERE r.id = ANY($1::uuid[]) GROUP BY 1, 2, 3`,
      [[...hangIds]],
    );
    const fmt = (values: number[]) => `p50 ${percentile(values, 50)} ms, p99 ${percentile(values, 99)} ms (n=${values.length})`;
    const kindOf = (url: string) => bad.find((b) => b.url === url)?.kind ?? url;
    const tenMbServer = bad[KINDS.indexOf("ten-mb")]!;
    const tenMbAttempts = attempts.filter((a) => a.url === tenMbServer.url);
    const details = [
      `healthy finish→received latency, alone: ${fmt(baseLat)}`,
      `healthy finish→received latency, next to the bad receivers: ${fmt(badLat)}`,
      `healthy finish→received latency, next to ${HANGING_ORIGINS} hanging receivers × ${PER_HANGING_ORIGIN} callbacks, holding ${heldSlots} of the worker's ${SLOTS.total} delivery slots (${SLOTS.perOrigin} per origin) when the healthy traffic started: ${fmt(hangLat)}`,
      `hanging receivers' callbacks: ${hangFinals.map((f) => `${f.callback_status} after ${f.attempts} attempts, ${f.error_class} ×${f.n}`).join("; ")}`,
      `bad receivers' attempts by error class: ${bad.map((b) => `${b.kind}: ${attempts.filter((a) => a.url === b.url).map((a) => `${a.error_class ?? "delivered"}×${a.n} ("${a.message?.slice(0, 120)}")`).join(", ")}`).join("; ")}`,
      `bad callbacks' final state: ${finals.map((f) => `${kindOf(f.callback_url)} ${f.callback_status} after ${f.attempts} attempts ×${f.n}`).join("; ")}`,
      `10 MB receiver: ${(tenMbServer.bytesSent / 1048576).toFixed(1)} MB written over ${tenMbServer.requests} requests; largest stored answer ${Math.max(0, ...tenMbAttempts.map((a) => a.max_body ?? 0))} characters`,
      `worker RSS: max ${baselineMaxRss.toFixed(0)} MB with the healthy receiver alone, ${rss.maxMb.toFixed(0)} MB overall (${rss.samples} samples, limit ${KNOBS.maxWorkerRssMb} MB)`,
      `callbacks: CALLBACK_TIMEOUT 2s, CALLBACK_RETRY_DELAYS ${RETRY_DELAYS}, CALLBACK_CONCURRENCY ${SLOTS.total}, CALLBACK_ORIGIN_CONCURRENCY ${SLOTS.perOrigin} (defaults); ${PER_BAD_RECEIVER} callbacks per bad receiver, ${HEALTHY_PER_PHASE} healthy per phase at ${KNOBS.rate}/s`,
    ];

    const { counts } = await finishScenario({
      order: 6,
      scenario: "6. bad receivers (hang, trickle, 10 MB, close mid-response, garbage) next to a healthy one",
      startedAt,
      ctx,
      traffic: [baseline, badTraffic, withBad, hangTraffic, withHanging],
      expectExhausted,
      notes: () => [
        `healthy latency p50/p99 ${percentile(baseLat, 50)}/${percentile(baseLat, 99)} ms alone, ${percentile(badLat, 50)}/${percentile(badLat, 99)} ms next to the 5 bad ones, ${percentile(hangLat, 50)}/${percentile(hangLat, 99)} ms with ${HANGING_ORIGINS} hanging origins holding every slot`,
        `${expectExhausted.size} bad callbacks EXHAUSTED with the expected class (not lost: expected)`,
        `worker RSS max ${rss.maxMb.toFixed(0)} MB`,
      ],
      details,
    });

    expect(counts.lost).toBe(0);
    expect(badIds.size).toBe(PER_BAD_RECEIVER * bad.length);
    for (const b of bad) {
      const mine = attempts.filter((a) => a.url === b.url);
      expect(mine.map((a) => a.error_class), `${b.kind}: every attempt fails with ${EXPECTED_ERROR_CLASS[b.kind]}`).toEqual([EXPECTED_ERROR_CLASS[b.kind]]);
      expect(mine.every((a) => !a.delivered)).toBe(true);
      const ended = finals.filter((f) => f.callback_url === b.url);
      expect(ended.map((f) => [f.callback_status, f.attempts, f.n]), `${b.kind}: EXHAUSTED after every attempt`).toEqual([["EXHAUSTED", RETRY_DELAYS.split(",").length + 1, PER_BAD_RECEIVER]]);
    }
    expect(Math.max(...tenMbAttempts.map((a) => a.max_body ?? 0)), "at most 16 KiB of an answer is kept").toBeLessThanOrEqual(16 * 1024);
    expect(hangFinals.map((f) => [f.callback_status, f.error_class, f.attempts, f.n]), "hanging: EXHAUSTED, every attempt a timeout").toEqual([
      ["EXHAUSTED", "timeout", RETRY_DELAYS.split(",").length + 1, PER_HANGING_ORIGIN * hanging.length],
    ]);
    expect(hangLat.length).toBe(withHanging.accepted.size);
    expect(rss.maxMb, "the worker's memory stays bounded").toBeLessThan(KNOBS.maxWorkerRssMb);
    expect(baseLat.length).toBe(baseline.accepted.size);
    expect(badLat.length).toBe(withBad.accepted.size);
  });
});
