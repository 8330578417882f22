import { afterEach, describe, expect, it } from "vitest";
import { cleanupStack, KNOBS } from "./harness.js";
import { startPrivatePostgres, until } from "./infra.js";
import { finishScenario, setUpScenario, startServiceWithTraffic } from "./scenario.js";

type Fault = { kind: "crash" | "terminate"; start: number; end: number };

describe("fault: PostgreSQL unavailable under load", () => {
  const cleanup = cleanupStack();
  afterEach(() => cleanup.run());

  it("5. a private PostgreSQL crashed (pg_ctl stop -m immediate) and restarted many times, and its backends terminated: the same API and worker serve throughout, 503 + Retry-After only while it is away, nothing accepted lost", { timeout: 240_000 + 5 * KNOBS.pgLongOutageMs }, async () => {
    const startedAt = Date.now();
    const postgres = await startPrivatePostgres();
    cleanup.add("stop the private PostgreSQL and remove its directory", () => postgres.destroy());
    const database = "ricochet_faults";
    await postgres.admin((client) => client.query(`CREATE DATABASE ${database}`));
    const ctx = await setUpScenario(cleanup, { databaseUrl: postgres.url(database) });
    const { cluster } = ctx;
    const { api, worker, traffic } = await startServiceWithTraffic(ctx, cleanup, { delayMs: 100 });
    await traffic.waitFor("60 accepted before the first fault", () => traffic.accepted.size >= 60);

    const faults: Fault[] = [];
    /** The server crashes, stays down `downMs` (the fault's length, not a wait for anything), and starts again (recovery). */
    const crash = async (downMs: number) => {
      const start = Date.now();
      await postgres.stop();
      await until(`PostgreSQL has been down ${downMs} ms`, () => Date.now() - start >= downMs, downMs + 5_000, 20);
      await postgres.start();
      const end = Date.now();
      faults.push({ kind: "crash", start, end });
      await traffic.waitFor("submits accepted again after the restart", () => traffic.acceptedSince(end) >= 20, 45_000);
    };

    for (let i = 0; i < KNOBS.pgShortOutages; i++) await crash(KNOBS.pgShortOutageMs);
    await crash(KNOBS.pgLongOutageMs);

    const terminated: number[] = [];
    for (let i = 0; i < KNOBS.pgTerminations; i++) {
      const start = Date.now();
      terminated.push(await postgres.terminateBackends(database));
      const end = Date.now();
      faults.push({ kind: "terminate", start, end });
      await traffic.waitFor("submits accepted after the backends were ended", () => traffic.acceptedSince(end) >= 20, 45_000);
    }
    await traffic.stop();

    const refusals = traffic.refused();
    const inWindow = (sentAt: number, at: number) => faults.some((f) => at >= f.start && sentAt <= f.end + KNOBS.recoverySlackMs);
    const outside = refusals.filter((r) => !inWindow(r.sentAt, r.at));
    const byFault = faults.map((f, i) => refusals.filter((r) => r.at >= f.start && r.at < (faults[i + 1]?.start ?? Infinity)).length);
    // A job that meets the database away waits and retries without using an attempt (its log line
    // says so); "run attempt failed" would mean an attempt was spent.
    const runRetries = cluster.countInOutput("database unavailable: the job waits", "worker");
    const recordRetries = cluster.countInOutput("could not be made or recorded", "worker");
    const crashes = faults.filter((f) => f.kind === "crash");
    // How far up BullMQ's retry ladder (RUN_ACTION_JOB_OPTIONS: 8 attempts, exponential from 1 s) jobs climbed.
    const attemptsMade = cluster.logLines("worker").flatMap((line) => (line.msg === "run attempt failed" && typeof line.attempt === "number" ? [line.attempt] : []));
    const highestAttempt = Math.max(0, ...attemptsMade);
    const { counts } = await finishScenario({
      order: 5,
      scenario: `5. PostgreSQL away: ${KNOBS.pgShortOutages}× crash ${KNOBS.pgShortOutageMs / 1000} s + 1× ${KNOBS.pgLongOutageMs / 1000} s + ${KNOBS.pgTerminations}× pg_terminate_backend`,
      startedAt,
      ctx,
      traffic: [traffic],
      // A job that failed during the outages waits up to about as long again before its next try.
      settleMs: Math.max(KNOBS.settleMs, 3 * KNOBS.pgLongOutageMs + 30_000),
      notes: () => [
        `same API pid ${api.child.pid} and worker pid ${worker.child.pid} throughout`,
        `worker retried ${runRetries} job runs without spending attempts (highest attempt spent: ${highestAttempt}/8) and resumed ${recordRetries} first deliveries`,
        `backends ended per termination: ${terminated.join("/")}`,
      ],
      details: [
        `outages (down → accepting again): ${crashes.map((f) => ((f.end - f.start) / 1000).toFixed(1)).join(", ")} s`,
        `503s per fault (crashes, then terminations): ${byFault.join(", ")}`,
        `503s outside a fault window (+${KNOBS.recoverySlackMs / 1000} s): ${outside.length}`,
        `worker log "database unavailable: the job waits": ${runRetries}; highest attempt spent by one job ("run attempt failed"): ${highestAttempt} of 8; "first callback attempt could not be made or recorded": ${recordRetries}`,
      ],
    });
    expect(refusals.length, "the outages were seen by clients").toBeGreaterThan(0);
    expect([...new Set(refusals.map((r) => r.status))], "every refusal is a 503").toEqual([503]);
    expect(traffic.errors(), "the API never dropped a connection").toEqual([]);
    expect(outside.map((r) => `${r.status} ${new Date(r.at).toISOString()}: ${r.body}`), "503 only while the database is away or just after").toEqual([]);
    expect(cluster.alive("api").map((t) => t.pid)).toEqual([api.child.pid]);
    expect(cluster.alive("worker").map((t) => t.pid)).toEqual([worker.child.pid]);
    expect(counts.lost).toBe(0);
    expect(runRetries, "the worker retried writes that failed while the database was away").toBeGreaterThan(0);
    expect(highestAttempt, "an outage spends no job attempt").toBe(0);
  });
});
