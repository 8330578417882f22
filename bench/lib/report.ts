/**
 * The summary: one row per figure, Ricochet beside its baseline from the same run, the ratio,
 * the target and whether it is met. Printed, and written as bench/results.md; the raw figures
 * go to bench/results.json.
 */
import { execFileSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";
import { Redis } from "ioredis";
import pg from "pg";
import { config } from "./config.js";
import type { DrainResult } from "./baselines.js";
import type { ClosedLoopResult, OpenLoopResult } from "./load.js";
import { NOISY_OTHER_CPU } from "./proc-stats.js";
import { round } from "./stats.js";

export type Row = { what: string; ricochet: string; baseline: string; ratio: string; target: string; met: string };

// Loose shapes of what the phases return (see bench/phases/*), so a skipped phase is just absent.
type Delivery = { deliveriesPerSecond: number; delivered: number; requested: number; complete: boolean; seconds: number; cpu?: Cpu };
type LatencyRun = { offeredPerSecond: number; complete: boolean; delivered: number; submit: OpenLoopResult; finishToCallbackMs: { p50: number; p99: number; max: number; n: number } };
/** `baseline`: (b) + (c) live, the bare stack measured the same way at the same rate (absent in results of older runs). */
type Latency = LatencyRun & { baseline?: LatencyRun };

export type Results = {
  submit?: { ricochet: ClosedLoopResult; b: ClosedLoopResult; d: ClosedLoopResult; ratioToB: number; ratioToD: number };
  openLoop?: { ricochet: OpenLoopResult[]; b: OpenLoopResult[] };
  endToEnd?: { ricochet: Delivery; c: DrainResult; dDrain: DrainResult; dEndToEnd: Delivery };
  baselineC?: DrainResult;
  latency?: Latency;
  /** The same at half the end-to-end rate this run measured, when that is below the target's rate. */
  latencyAtHalf?: Latency;
  storm?: Delivery & { redelivered: number; setupComplete: boolean };
  retry?: { measured: number; complete: boolean; dueWindowSeconds: number; peakDuePerSecond: number; latenessAtReceiverMs: { p50: number; p99: number; max: number }; dueDuringSetup?: { n: number; latenessAtReceiverMs: { p99: number } } };
  redis?: { pending: number; complete: boolean; bytesPerPending: number };
  long?: Delivery & { startMb: number; midMb: number; endMb: number; secondQuarterMedianMb: number; lastQuarterMedianMb: number; secondQuarterFloorMb: number; lastQuarterFloorMb: number; secondQuarterPeakMb: number; lastQuarterPeakMb: number; flat: boolean };
  pglite?: { submit: ClosedLoopResult; endToEnd: Delivery };
  scale?: {
    cores: number;
    configurations: {
      name: string;
      apis: number;
      workers: number;
      endToEnd: Delivery & { redisCoreAt: number; costPerThousand: Cpu };
      submit: ClosedLoopResult & { redisCoreAt: number; costPerThousand: Cpu };
      endToEndRatio: number;
      submitRatio: number;
      database: { requests: number; mbPerMillion: number; byTableMbPerMillion: Record<string, number> };
    }[];
  };
};

const n = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "—");
const ms = (value: number) => (!Number.isFinite(value) ? "—" : value >= 1_000 ? `${round(value / 1_000, 2)} s` : `${round(value)} ms`);
const mark = (ok: boolean, ...measured: ({ cpu?: Cpu } | undefined)[]) => `${ok ? "yes" : "**no**"}${noisy(...measured)}`;

type Cpu = Record<string, number>;
const noisy = (...measured: ({ cpu?: Cpu } | undefined)[]) => {
  const other = Math.max(0, ...measured.map((m) => m?.cpu?.other ?? 0));
  return other > NOISY_OTHER_CPU ? ` (noisy: other ${other} %)` : "";
};
const incomplete = (complete: boolean) => (complete ? "" : " (incomplete)");
const closed = (r: ClosedLoopResult) => `${n(r.okPerSecond)}/s, p50 ${ms(r.p50ms)}, p99 ${ms(r.p99ms)}`;
const open = (r: OpenLoopResult) => `${n(r.achievedPerSecond)}/s, p50 ${ms(r.p50ms)}, p99 ${ms(r.p99ms)}${r.non2xx + r.errors + r.unfinished ? `, ${r.non2xx + r.errors + r.unfinished} failed/unfinished` : ""}`;

/** CPU shares as "api 80+78, worker 31, postgres 40, …; machine 190 of 200 %": several processes of a kind joined by +. */
function cpuShares(cpu: Cpu | undefined, cores: number): string {
  if (!cpu) return "cpu —";
  const labels: [RegExp, string][] = [[/^ricochetApi\d*$/, "api"], [/^ricochetWorker\d*$/, "worker"], [/^postgres$/, "postgres"], [/^redis$/, "redis"], [/^autocannon$/, "load generator"], [/^receiver$/, "receiver"], [/^other$/, "other"]];
  const parts = labels
    .map(([pattern, label]) => [label, Object.entries(cpu).filter(([group]) => pattern.test(group)).map(([, share]) => share)] as const)
    .filter(([, shares]) => shares.length)
    .map(([label, shares]) => `${label} ${shares.join("+")}`);
  return `cpu % of one core: ${parts.join(", ")}; machine ${cpu.machine ?? "—"} of ${cores * 100}`;
}

/** "api 26, worker 60, postgres 44, redis 22" % of one core per 1,000/s, several processes of a kind summed. */
function costShares(cost: Cpu): string {
  const sum = (pattern: RegExp) => round(Object.entries(cost).filter(([group]) => pattern.test(group)).reduce((total, [, share]) => total + share, 0));
  return `api ${sum(/^ricochetApi/)}, worker ${sum(/^ricochetWorker/)}, postgres ${sum(/^postgres$/)}, redis ${sum(/^redis$/)} % of one core`;
}

function scaleRows(s: NonNullable<Results["scale"]>): Row[] {
  const rows: Row[] = [];
  const reference = s.configurations[0];
  for (const c of s.configurations) {
    const label = `scale ${c.name} (${c.apis} api + ${c.workers} worker processes, ${s.cores} cores)`;
    const vs = (what: string) => (c === reference ? "(the reference)" : `1x1: ${what}`);
    rows.push({
      what: `${label}: end to end, submit → echo → callback 200 (${n(c.endToEnd.requested)})`,
      ricochet: `${n(c.endToEnd.deliveriesPerSecond)}/s${incomplete(c.endToEnd.complete)}; ${cpuShares(c.endToEnd.cpu, s.cores)}`,
      baseline: vs(`${n(reference!.endToEnd.deliveriesPerSecond)}/s`),
      ratio: `${c.endToEndRatio}×`,
      target: "—",
      met: `—${noisy(c.endToEnd)}`,
    });
    rows.push({
      what: `${label}: submit at saturation, ${c.submit.connections} connections, workers running`,
      ricochet: `${closed(c.submit)}; ${cpuShares(c.submit.cpu, s.cores)}`,
      baseline: vs(`${n(reference!.submit.okPerSecond)}/s`),
      ratio: `${c.submitRatio}×`,
      target: "—",
      met: `—${noisy(c.submit)}`,
    });
  }
  if (reference) {
    const e = reference.endToEnd;
    rows.push({ what: "scale 1x1: CPU per 1,000 end-to-end requests/s", ricochet: `${costShares(e.costPerThousand)}; Redis would take a whole core at ≈ ${n(e.redisCoreAt)}/s (linear)`, baseline: "—", ratio: "—", target: "—", met: `—${noisy(e)}` });
    rows.push({ what: "scale 1x1: CPU per 1,000 submits/s (workers running)", ricochet: `${costShares(reference.submit.costPerThousand)}; Redis would take a whole core at ≈ ${n(reference.submit.redisCoreAt)}/s (linear)`, baseline: "—", ratio: "—", target: "—", met: `—${noisy(reference.submit)}` });
    const d = reference.database;
    const tables = Object.entries(d.byTableMbPerMillion).filter(([, mb]) => mb >= 1).map(([table, mb]) => `${table.replace(/^public\./, "")} ${mb}`).join(", ");
    rows.push({ what: `PostgreSQL growth per million requests (end to end with callback, ${n(d.requests)} requests, scale 1x1, no VACUUM)`, ricochet: `${n(d.mbPerMillion)} MB${tables ? ` (tables with indexes: ${tables})` : ""}`, baseline: "—", ratio: "—", target: "—", met: "—" });
  }
  return rows;
}

/** The receiver's clock and `dateFinished` have 1 ms resolution: 0 means under a millisecond. */
const latencyMs = (figure: number) => (figure === 0 ? "< 1 ms" : ms(figure));
const latencyRatio = (ours: number, theirs: number) => (theirs === 0 ? `> ${round(ours)}×` : `${round(ours / theirs)}×`);

/** A latency figure only counts at the offered rate: a stack that accepted much less was not loaded as asked. */
const latencyValid = (run: LatencyRun) => run.complete && run.submit.achievedPerSecond >= 0.95 * run.offeredPerSecond;

export function summaryRows(r: Results): Row[] {
  const rows: Row[] = [];
  if (r.submit) {
    const { ricochet, b, d } = r.submit;
    rows.push({ what: `submit, API alone, ${ricochet.connections} connections (req/s)`, ricochet: closed(ricochet), baseline: `(b) ${closed(b)}`, ratio: `${r.submit.ratioToB}×`, target: "≥ 0.5× (b)", met: mark(r.submit.ratioToB >= 0.5, ricochet, b) });
    rows.push({ what: "submit vs the peer", ricochet: `${n(ricochet.okPerSecond)}/s`, baseline: `(d) ${closed(d)}`, ratio: `${r.submit.ratioToD}×`, target: "> (d)", met: mark(r.submit.ratioToD > 1, ricochet, d) });
  }
  if (r.openLoop) {
    r.openLoop.ricochet.forEach((res, i) => {
      const b = r.openLoop!.b[i];
      rows.push({ what: `submit, open loop at ${n(res.offeredPerSecond)}/s offered`, ricochet: open(res), baseline: b ? `(b) ${open(b)}` : "—", ratio: b ? `p99 ${round(res.p99ms / b.p99ms)}×` : "—", target: "—", met: `—${noisy(res, b)}` });
    });
  }
  const c = r.endToEnd?.c ?? r.baselineC;
  if (r.endToEnd) {
    const { ricochet, dDrain, dEndToEnd } = r.endToEnd;
    const toC = round(ricochet.deliveriesPerSecond / r.endToEnd.c.perSecond, 2);
    const toD = round(ricochet.deliveriesPerSecond / dEndToEnd.deliveriesPerSecond, 2);
    rows.push({ what: `end to end: submit → echo → callback 200 (${n(ricochet.requested)})`, ricochet: `${n(ricochet.deliveriesPerSecond)}/s${incomplete(ricochet.complete)}`, baseline: `(c) ${n(r.endToEnd.c.perSecond)}/s (bare BullMQ + undici, pre-enqueued)`, ratio: `${toC}×`, target: "≥ 0.3× (c)", met: mark(toC >= 0.3 && ricochet.complete, ricochet, r.endToEnd.c) });
    rows.push({ what: "end to end vs the peer", ricochet: `${n(ricochet.deliveriesPerSecond)}/s`, baseline: `(d) ${n(dEndToEnd.deliveriesPerSecond)}/s end to end${incomplete(dEndToEnd.complete)}; drained like (c): ${n(dDrain.perSecond)}/s`, ratio: `${toD}×`, target: "> (d)", met: mark(toD > 1 && ricochet.complete, ricochet, dEndToEnd) });
  }
  if (r.latency) {
    const l = r.latency.finishToCallbackMs;
    const valid = latencyValid(r.latency);
    const label = `finish → callback received, ${n(r.latency.offeredPerSecond)} submits/s offered (${n(r.latency.submit.achievedPerSecond)}/s accepted)`;
    const b = r.latency.baseline;
    // The bare stack's own figure at the same rate, and how many times that Ricochet takes.
    const bare = (ours: number, theirs: number | undefined) =>
      b && theirs !== undefined ? { baseline: `(b)+(c) live ${latencyMs(theirs)}${incomplete(latencyValid(b))}`, ratio: latencyRatio(ours, theirs) } : { baseline: "—", ratio: "—" };
    rows.push({ what: `${label}, p50`, ricochet: `${ms(l.p50)}${incomplete(valid)}`, ...bare(l.p50, b?.finishToCallbackMs.p50), target: "≤ 5 ms", met: mark(l.p50 <= 5 && valid, r.latency.submit, b?.submit) });
    rows.push({ what: `${label}, p99`, ricochet: `${ms(l.p99)} (max ${ms(l.max)}, ${n(l.n)} callbacks)`, ...bare(l.p99, b?.finishToCallbackMs.p99), target: "≤ 25 ms", met: mark(l.p99 <= 25 && valid, r.latency.submit, b?.submit) });
  }
  if (r.latencyAtHalf) {
    const h = r.latencyAtHalf;
    const l = h.finishToCallbackMs;
    const b = h.baseline;
    rows.push({
      what: `finish → callback received at half the measured end-to-end rate, ${n(h.offeredPerSecond)} submits/s offered (${n(h.submit.achievedPerSecond)}/s accepted)`,
      ricochet: `p50 ${ms(l.p50)}, p99 ${ms(l.p99)} (max ${ms(l.max)}, ${n(l.n)} callbacks)${incomplete(latencyValid(h))}`,
      baseline: b ? `(b)+(c) live p50 ${latencyMs(b.finishToCallbackMs.p50)}, p99 ${latencyMs(b.finishToCallbackMs.p99)}${incomplete(latencyValid(b))}` : "—",
      ratio: b ? `p50 ${latencyRatio(l.p50, b.finishToCallbackMs.p50)}, p99 ${latencyRatio(l.p99, b.finishToCallbackMs.p99)}` : "—",
      target: "— (the target is at 1,000/s)",
      met: "—",
    });
  }
  if (r.storm && c) {
    const ratio = round(r.storm.deliveriesPerSecond / c.perSecond, 2);
    rows.push({ what: `redelivery storm: ${n(r.storm.redelivered)} EXHAUSTED callbacks redelivered`, ricochet: `${n(r.storm.deliveriesPerSecond)}/s${incomplete(r.storm.complete && r.storm.setupComplete)}`, baseline: `(c) ${n(c.perSecond)}/s`, ratio: `${ratio}×`, target: "≥ 0.5× (c)", met: mark(ratio >= 0.5 && r.storm.complete, r.storm, c) });
  }
  if (r.retry) {
    const l = r.retry.latenessAtReceiverMs;
    const setup = r.retry.dueDuringSetup;
    const duringSetup = setup?.n ? `; ${n(setup.n)} fell due before the last first attempt (the setup's load still on): p99 ${ms(setup.latenessAtReceiverMs.p99)}` : "";
    rows.push({ what: `retry lateness, ${n(r.retry.measured)} retries due within ${r.retry.dueWindowSeconds} s (≤ ${n(r.retry.peakDuePerSecond)} in one second)`, ricochet: `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)}${duringSetup}${incomplete(r.retry.complete)}`, baseline: "—", ratio: "—", target: "p99 ≤ 1 s", met: mark(l.p99 <= 1_000 && r.retry.complete) });
  }
  if (r.redis) {
    rows.push({ what: `Redis bytes per pending callback (${n(r.redis.pending)} pending)`, ricochet: `${n(r.redis.bytesPerPending)} B${incomplete(r.redis.complete)}`, baseline: "—", ratio: "—", target: "≤ 2 KB", met: mark(r.redis.bytesPerPending <= 2048 && r.redis.complete) });
  }
  if (r.long) {
    const l = r.long;
    rows.push({ what: `worker RSS over ${n(l.delivered)} deliveries${l.complete ? "" : ` (of ${n(l.requested)} asked: stopped at the time limit)`}, ${n(l.seconds)} s at ${n(l.deliveriesPerSecond)}/s`, ricochet: `start ${l.startMb} / mid ${l.midMb} / end ${l.endMb} MB; median of 2nd quarter ${l.secondQuarterMedianMb}, of last ${l.lastQuarterMedianMb} MB (floors ${l.secondQuarterFloorMb}, ${l.lastQuarterFloorMb}; peaks ${l.secondQuarterPeakMb}, ${l.lastQuarterPeakMb} MB)`, baseline: "—", ratio: "—", target: "flat", met: mark(l.flat) });
  }
  if (r.pglite) {
    rows.push({ what: "PGlite, `start` mode: submit at saturation", ricochet: closed(r.pglite.submit), baseline: "—", ratio: "—", target: "—", met: "—" });
    rows.push({ what: `PGlite, \`start\` mode: end to end (${n(r.pglite.endToEnd.requested)})`, ricochet: `${n(r.pglite.endToEnd.deliveriesPerSecond)}/s${incomplete(r.pglite.endToEnd.complete)}`, baseline: "—", ratio: "—", target: "—", met: "—" });
  }
  if (r.scale) rows.push(...scaleRows(r.scale));
  return rows;
}

/** The `other` CPU share of every measurement: how much of the machine something else took. */
export function otherCpu(results: unknown): { median: number; max: number; measurements: number } {
  const shares: number[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) {
        if (key === "cpu" && inner && typeof inner === "object" && "other" in inner) shares.push(Number((inner as { other: number }).other));
        else walk(inner);
      }
    }
  };
  walk(results);
  shares.sort((a, b) => a - b);
  return { median: shares[Math.floor(shares.length / 2)] ?? NaN, max: shares[shares.length - 1] ?? NaN, measurements: shares.length };
}

export function markdownTable(rows: Row[]): string {
  const escape = (text: string) => text.replaceAll("|", "\\|");
  const footnote = rows.some((row) => row.met.includes("noisy"))
    ? [``, `*noisy*: while it was measured (Ricochet or its baseline), processes other than the measured ones used more than ${NOISY_OTHER_CPU} % of a core (\`other\` in results.json): the figure and its ratio are suspect.`]
    : [];
  return ["| what | Ricochet | baseline | ratio | target | met |", "|---|---|---|---|---|---|", ...rows.map((row) => `| ${[row.what, row.ricochet, row.baseline, row.ratio, row.target, row.met].map(escape).join(" | ")} |`), ...footnote].join("\n");
}

export function printTable(rows: Row[]): void {
  for (const row of rows) {
    console.log(`\n${row.what}\n  Ricochet: ${row.ricochet}\n  baseline: ${row.baseline}\n  ratio ${row.ratio}   target ${row.target}   met: ${row.met.replaceAll("*", "")}`);
  }
}

export async function machineInfo() {
  const client = new pg.Client({ connectionString: config.adminDatabaseUrl });
  await client.connect();
  const postgres = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version;
  await client.end();
  const redis = new Redis(config.redisUrl);
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1];
  redis.disconnect();
  const git = (args: string[]) => {
    try {
      return execFileSync("git", args, { cwd: config.root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    } catch {
      return undefined;
    }
  };
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memoryGb: round(totalmem() / 2 ** 30),
    kernel: release(),
    /** 1-minute load average when the run started: above ~0.5, something else is using the cores. */
    loadAverageAtStart: round(loadavg()[0]!, 2),
    node: process.version,
    postgres,
    redis: redisVersion,
    /** BENCH_LABEL: what was measured, when the tree is not a git checkout. */
    label: process.env.BENCH_LABEL || undefined,
    commit: git(["rev-parse", "HEAD"]),
    uncommittedChanges: git(["status", "--porcelain", "--untracked-files=no", "--", "src"]) ? true : false,
  };
}
