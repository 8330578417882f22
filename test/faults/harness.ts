import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { spawnRicochet, type RicochetProcess } from "../helpers/process.js";
import { freePort } from "../helpers/redis.js";
import { TEST_ADMIN_TOKEN, TEST_SECRETS_KEY } from "../helpers/runtime.js";
import { until } from "./infra.js";
import { KNOBS } from "./knobs.js";
import type { CountingReceiver } from "./receiver.js";
import { REPORTS_DIR } from "./report.js";
import type { Traffic } from "./traffic.js";

export { KNOBS };
export { recordRow, type Row } from "./report.js";

/** The environment every Ricochet child of the fault suite runs with: short timers, loopback callbacks. */
export function serviceEnv(overrides: Record<string, string>): Record<string, string> {
  return {
    SECRETS_KEY: TEST_SECRETS_KEY,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    OUTBOUND_ALLOW: "127.0.0.1/32",
    SWEEPER_INTERVAL: "1s",
    SWEEPER_GRACE: "1s",
    JOB_LOCK_DURATION: "2s",
    CALLBACK_TIMEOUT: "2s",
    CALLBACK_RETRY_DELAYS: "200ms,400ms,800ms,1s,1s,2s,2s,2s,2s,2s",
    SHUTDOWN_TIMEOUT: "2s",
    WORKER_CONCURRENCY: "32",
    DEFAULT_MAX_CONCURRENT: "1000",
    ACTION_THREADS: "1",
    MANAGED_REDIS: "off",
    ...overrides,
  };
}

type Tracked = { role: "api" | "worker"; proc: RicochetProcess; pid: number; killedOnPurpose: boolean };

/**
 * Ricochet's API and worker processes for one scenario, every one tracked: the ones the test
 * kills on purpose, and any other that exits (which fails the scenario).
 */
export async function startCluster(env: Record<string, string>) {
  const apiPort = await freePort();
  const tracked: Tracked[] = [];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  // If the test process itself goes away (a crash, a timeout), its Ricochet children go with it.
  const killAll = () => {
    for (const t of tracked) if (t.proc.child.exitCode === null && t.proc.child.signalCode === null) t.proc.child.kill("SIGKILL");
  };
  process.once("exit", killAll);

  async function spawn(role: "api" | "worker", extra: Record<string, string> = {}): Promise<RicochetProcess> {
    const proc = spawnRicochet(role, { ...env, PORT: String(apiPort), ...extra });
    tracked.push({ role, proc, pid: proc.child.pid!, killedOnPurpose: false });
    await proc.waitForOutput(role === "api" ? "ricochet is listening" : "ricochet worker started", 60_000);
    return proc;
  }

  async function kill(proc: RicochetProcess, signal: NodeJS.Signals = "SIGKILL") {
    const entry = tracked.find((t) => t.proc === proc);
    if (entry) entry.killedOnPurpose = true;
    return proc.kill(signal);
  }

  /** A client of the seeded `default` tenant, made through the admin API, and a bearer token for it. */
  async function createClient(): Promise<{ token: string; clientId: string; webhookSecret: string }> {
    const created = await fetch(`${apiUrl}/admin/v1/tenants/default/clients`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${env.ADMIN_TOKEN}` },
      body: JSON.stringify({ name: "faults" }),
    });
    if (created.status !== 201) throw new Error(`creating a client answered ${created.status}: ${await created.text()}`);
    const client = (await created.json()) as { clientId: string; clientSecret: string; webhookSecret: string };
    const issued = await fetch(`${apiUrl}/oauth/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }),
    });
    if (issued.status !== 200) throw new Error(`token answered ${issued.status}: ${await issued.text()}`);
    const { access_token } = (await issued.json()) as { access_token: string };
    return { token: access_token, clientId: client.clientId, webhookSecret: client.webhookSecret };
  }

  return {
    apiPort,
    apiUrl,
    env,
    spawn,
    kill,
    createClient,
    processes: tracked,
    /** Processes that exited although the test did not kill them, with their exit and last output. */
    unexpectedExits() {
      return tracked
        .filter((t) => !t.killedOnPurpose && (t.proc.child.exitCode !== null || t.proc.child.signalCode !== null))
        .map((t) => `${t.role} pid ${t.pid} exited (code ${t.proc.child.exitCode}, signal ${t.proc.child.signalCode}); last output:\n${t.proc.output().slice(-3000)}`);
    },
    /** Every process still running, by role (a long-lived one keeps its pid). */
    alive: (role?: "api" | "worker") => tracked.filter((t) => (!role || t.role === role) && t.proc.child.exitCode === null && t.proc.child.signalCode === null),
    /** Log lines of every process of a role containing `text`. */
    countInOutput(text: string, role?: "api" | "worker") {
      let n = 0;
      for (const t of tracked) if (!role || t.role === role) n += t.proc.output().split(text).length - 1;
      return n;
    },
    /** The JSON log lines of every process of a role (pino, one object per line). */
    logLines(role?: "api" | "worker"): Record<string, unknown>[] {
      return tracked
        .filter((t) => !role || t.role === role)
        .flatMap((t) => t.proc.output().split("\n"))
        .flatMap((line) => {
          if (!line.startsWith("{")) return [];
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        });
    },
    async stop() {
      process.off("exit", killAll);
      await Promise.all(tracked.map((t) => t.proc.kill("SIGKILL")));
      // FAULTS_KEEP_LOGS=1 keeps every process's output under reports/logs/ for diagnosis.
      if (process.env.FAULTS_KEEP_LOGS) {
        const dir = join(REPORTS_DIR, "logs");
        mkdirSync(dir, { recursive: true });
        for (const t of tracked) writeFileSync(join(dir, `${env.QUEUE_PREFIX?.replace(/[{}]/g, "")}-${t.role}-${t.pid}.log`), t.proc.output());
      }
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** A pg pool for counting that survives the server going away (scenario 5 ends its backends). */
export function countingPool(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5_000 });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

type DbRow = {
  id: string;
  status: string;
  error_code: string | null;
  callback_url: string | null;
  callback_status: string | null;
  runs: number;
  finished_at: Date | null;
};

export type Settlement = {
  rows: Map<string, DbRow>;
  settled: boolean;
  waitedMs: number;
};

async function readRows(pool: pg.Pool): Promise<Map<string, DbRow>> {
  const { rows } = await pool.query<DbRow>("SELECT id, status, error_code, callback_url, callback_status, runs, finished_at FROM async_requests");
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * Waits (polling the database and the receiver's log, up to `deadlineMs`) until every request in
 * the database has finished and its callback has settled: DELIVERED and received with a 200, or
 * EXHAUSTED for the callbacks expected to fail. Accepted ids missing from the database never
 * settle by waiting and are counted as lost, not waited for.
 */
export async function settle(pool: pg.Pool, receiver: CountingReceiver, options: { expectExhausted?: Set<string>; deadlineMs?: number } = {}): Promise<Settlement> {
  const started = Date.now();
  let rows = new Map<string, DbRow>();
  let settled = false;
  const isSettled = (row: DbRow) => {
    if (!FINAL.has(row.status)) return false;
    if (!row.callback_url) return true;
    if (options.expectExhausted?.has(row.id)) return row.callback_status === "EXHAUSTED" || row.callback_status === "DELIVERED";
    return row.callback_status === "DELIVERED" && receiver.deliveredAt(row.id) !== undefined;
  };
  await until(
    "every request finished and every callback settled",
    async () => {
      try {
        rows = await readRows(pool);
      } catch {
        return false; // the database is still coming back
      }
      settled = [...rows.values()].every(isSettled);
      return settled;
    },
    options.deadlineMs ?? KNOBS.settleMs,
    500,
  ).catch(() => {});
  return { rows, settled, waitedMs: Date.now() - started };
}

/** Counts a settled scenario. `lostIds` lists what was accepted and not accounted for. */
export function count(input: {
  settlement: Settlement;
  accepted: Iterable<string>;
  receiver: CountingReceiver;
  traffic?: Traffic[];
  expectExhausted?: Set<string>;
}) {
  const { settlement, receiver } = input;
  const accepted = [...new Set(input.accepted)];
  const statuses = new Map<string, number>();
  const lostIds: { id: string; why: string }[] = [];
  let completed = 0;
  let reruns = 0;
  const exhaustedWrongly: string[] = [];
  for (const id of accepted) {
    const row = settlement.rows.get(id);
    if (!row) {
      lostIds.push({ id, why: "accepted (202) but not in the database" });
      continue;
    }
    if (row.runs > 1) reruns++;
    const key = row.error_code ? `${row.status}(${row.error_code})` : row.status;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    if (!FINAL.has(row.status)) {
      lostIds.push({ id, why: `never finished: ${row.status}` });
      continue;
    }
    completed++;
    if (!row.callback_url) continue;
    if (input.expectExhausted?.has(id)) {
      if (row.callback_status !== "EXHAUSTED") exhaustedWrongly.push(`${id}: ${row.callback_status}`);
      continue;
    }
    if (receiver.deliveredAt(id) === undefined) lostIds.push({ id, why: `finished with a callbackUrl, never received with a 200 (callback ${row.callback_status})` });
    else if (row.callback_status !== "DELIVERED") lostIds.push({ id, why: `received, but the database says callback ${row.callback_status}` });
  }
  const acceptedSet = new Set(accepted);
  const extra = [...settlement.rows.values()].filter((row) => !acceptedSet.has(row.id));
  const refusedByStatus = new Map<string, number>();
  let refused = 0;
  const refusedWithoutRetryAfter: string[] = [];
  for (const traffic of input.traffic ?? []) {
    for (const outcome of traffic.refused()) {
      refused++;
      refusedByStatus.set(String(outcome.status), (refusedByStatus.get(String(outcome.status)) ?? 0) + 1);
      if (outcome.status === 503 && !outcome.retryAfter) refusedWithoutRetryAfter.push(outcome.body);
    }
    for (const outcome of traffic.errors()) {
      refused++;
      refusedByStatus.set(`transport:${outcome.message}`, (refusedByStatus.get(`transport:${outcome.message}`) ?? 0) + 1);
    }
  }
  const { delivered, duplicates } = receiver.counts();
  return {
    accepted: accepted.length,
    refused,
    refusedByStatus,
    refusedWithoutRetryAfter,
    completed,
    delivered,
    duplicates,
    lost: lostIds.length,
    lostIds,
    statuses,
    reruns,
    exhaustedWrongly,
    /** Rows written although their submit was not answered 202 (the API died mid-submit). */
    extraRows: extra.length,
    extraUnsettled: extra.filter((row) => !FINAL.has(row.status)).length,
    badSignatures: receiver.badSignatures,
  };
}

export type Counts = ReturnType<typeof count>;

export const describeMap = (map: Map<string, number>) =>
  [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => `${key}×${n}`)
    .join(", ");

/** The standard notes of a scenario: what happened besides the columns. */
export function standardNotes(counts: Counts, settlement: Settlement): string[] {
  const notes: string[] = [];
  const nonCompleted = [...counts.statuses.entries()].filter(([status]) => status !== "COMPLETED");
  if (nonCompleted.length) notes.push(`statuses: ${describeMap(counts.statuses)}`);
  if (counts.refused) notes.push(`refused: ${describeMap(counts.refusedByStatus)}`);
  if (counts.reruns) notes.push(`${counts.reruns} re-run (runs > 1)`);
  if (counts.extraRows) notes.push(`${counts.extraRows} written but not acknowledged (all ${counts.extraUnsettled ? "NOT " : ""}finished)`);
  if (counts.badSignatures) notes.push(`${counts.badSignatures} bad signatures`);
  notes.push(`settled in ${(settlement.waitedMs / 1000).toFixed(1)} s`);
  return notes;
}

/** Cleanup steps run in reverse order, each even if another failed. */
export function cleanupStack() {
  const steps: { what: string; run: () => unknown }[] = [];
  return {
    add(what: string, run: () => unknown) {
      steps.push({ what, run });
    },
    async run() {
      const errors: string[] = [];
      for (const step of steps.splice(0).reverse()) {
        try {
          await step.run();
        } catch (error) {
          errors.push(`${step.what}: ${(error as Error).message}`);
        }
      }
      if (errors.length) console.warn(`cleanup problems:\n${errors.join("\n")}`);
    },
  };
}
