/**
 * `npm run bench`: Ricochet beside the bare stack, measured in the same run on this machine.
 * Every server, worker, receiver and load generator is its own process (see bench/lib/procs.ts);
 * each phase gets a fresh database and BullMQ prefix, and everything is removed at the end,
 * also on failure or Ctrl-C. What each phase measures: README.md, section Benchmarks.
 * Writes bench/results.json (raw figures) and bench/results.md (the summary table).
 *
 * The last phase, `scale` (bench/phases/scale.ts; about 70 s with the default BENCH_SCALE=1x1,2x2
 * on 2 cores), runs N `api` × M `worker` processes per configuration of BENCH_SCALE (e.g.
 * "1x1,2x1,1x2,2x2"; 1x1 is always measured first, as the reference) for BENCH_SCALE_E2E
 * end-to-end requests then submit at saturation, and reports each figure beside 1x1 with every
 * process's CPU share, plus PostgreSQL growth per million requests. `BENCH_ONLY=scale` runs it alone.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBullmqDrain } from "./lib/baselines.js";
import { config, type Phase } from "./lib/config.js";
import { cleanupAll, log, logDir, removeLogs, stopping } from "./lib/procs.js";
import { startReceiver } from "./lib/receiver-client.js";
import { machineInfo, markdownTable, otherCpu, printTable, summaryRows, type Results } from "./lib/report.js";
import { endToEndBaselines, finishToCallback, ricochetEndToEnd } from "./phases/e2e.js";
import { workerRss } from "./phases/long.js";
import { pgliteRun } from "./phases/pglite.js";
import { redisBytesPerPending } from "./phases/redis-memory.js";
import { retryLateness } from "./phases/retry.js";
import { scaling } from "./phases/scale.js";
import { redeliveryStorm } from "./phases/storm.js";
import { submitOpenLoop, submitSaturation } from "./phases/submit.js";

const on = (phase: Phase) => config.phases.has(phase);

async function main() {
  const startedAt = new Date();
  const machine = await machineInfo();
  const { phases, benchDir: _dir, ...sizes } = config;
  log(`bench: phases ${[...phases].join(", ")}; service from ${config.root} (${machine.label ?? `commit ${machine.commit?.slice(0, 7)}`}${machine.uncommittedChanges ? ", with uncommitted changes in src/" : ""}); logs in ${logDir()}`);
  if (machine.loadAverageAtStart > 0.5) log(`WARNING: load average ${machine.loadAverageAtStart} before the run: something else is using the cores, the figures will be low and noisy (see "other" in each cpu figure)`);
  const results: Results & Record<string, unknown> = {};
  const receiver = await startReceiver();

  if (on("submit")) results.submit = await submitSaturation();
  if (on("open")) results.openLoop = await submitOpenLoop();
  if (on("e2e")) {
    const baselines = await endToEndBaselines(receiver);
    // The long run continues on the warm end-to-end stack, so its worker is the one measured.
    const { run, after } = await ricochetEndToEnd(receiver, on("long") ? (stack) => workerRss(stack, receiver) : undefined);
    results.endToEnd = { ricochet: run, ...baselines };
    if (after) results.long = after;
  } else if (on("long")) {
    results.long = (await ricochetEndToEnd(receiver, (stack) => workerRss(stack, receiver))).after;
  }
  if (on("latency")) {
    results.latency = await finishToCallback(receiver);
    // The target's rate is fixed; on a machine whose end-to-end capacity is near it, that row
    // measures queueing. Half the rate this run measured shows the path with room to spare (on a
    // 2-core machine still not idle: smaller batches cost more per request).
    const half = results.endToEnd ? Math.floor(results.endToEnd.ricochet.deliveriesPerSecond / 2 / 50) * 50 : 0;
    if (half >= 50 && half < config.latencyRate) results.latencyAtHalf = await finishToCallback(receiver, half);
  }
  if (on("storm")) {
    if (!results.endToEnd) results.baselineC = await runBullmqDrain(receiver, config.baselineJobs);
    results.storm = await redeliveryStorm(receiver);
  }
  if (on("retry")) results.retry = await retryLateness(receiver);
  if (on("redis")) results.redis = await redisBytesPerPending(receiver);
  if (on("pglite")) results.pglite = await pgliteRun(receiver);
  if (on("scale")) results.scale = await scaling(receiver);
  await receiver.child.stop();

  const rows = summaryRows(results);
  const minutes = Math.round((Date.now() - startedAt.getTime()) / 6_000) / 10;
  printTable(rows);
  const other = otherCpu(results);
  const outcome = { date: startedAt.toISOString(), minutes, machine: { ...machine, otherCpu: other }, sizes, summary: rows, ...results };
  writeFileSync(join(config.benchDir, "results.json"), `${JSON.stringify(outcome, null, 2)}\n`);
  const service = machine.label ?? `commit ${machine.commit?.slice(0, 7)}${machine.uncommittedChanges ? " + uncommitted changes" : ""}`;
  const header = `Run of ${startedAt.toISOString()} (${minutes} min): ${machine.cpus} × ${machine.model}, Node ${machine.node}, PostgreSQL ${machine.postgres}, Redis ${machine.redis}, load average ${machine.loadAverageAtStart} at start; CPU used by processes other than the measured ones: median ${other.median} %, max ${other.max} % of one core; service: ${service}. Raw figures: results.json.`;
  writeFileSync(join(config.benchDir, "results.md"), `${header}\n\n${markdownTable(rows)}\n`);
  log(`done in ${minutes} min; wrote bench/results.json and bench/results.md`);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  if (!stopping()) console.error(error);
} finally {
  await cleanupAll();
  if (failed || config.keepLogs) log(`child process logs kept in ${logDir()}`);
  else removeLogs();
}
process.exit(failed ? 1 : 0);
