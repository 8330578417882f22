/**
 * 9. Scaling: for each BENCH_SCALE configuration, N `api` × M `worker` processes (1x1, the
 *    reference, always first), one fresh stack (database and BullMQ prefix of its own):
 *    - end to end first, on the idle stack: BENCH_SCALE_E2E submits with a callback until the
 *      receiver has answered 200 to every one (as phase 3); then, once the queues are idle, the
 *      database's size: PostgreSQL growth per million requests (after minus before the run,
 *      no VACUUM: what a live database holds, dead row versions included);
 *    - then submit at saturation, `echo` without callback (as phase 1: BENCH_CONNECTIONS,
 *      BENCH_WARMUP + BENCH_DURATION s), with the M workers running the submitted jobs
 *      meanwhile, as deployed.
 *    One load generator (autocannon) spreads its connections round robin over the N APIs,
 *    each on its own port. Every figure carries each process's CPU share (% of one core) and
 *    the machine's core count, so the saturated one shows; `costPerThousand` is the share each
 *    takes per 1,000 requests/s, and `redisCoreAt` the throughput at which Redis (one thread)
 *    would use a whole core if its share grew linearly.
 */
import { cpus } from "node:os";
import { config, type ScaleConfiguration } from "../lib/config.js";
import { waitFor } from "../lib/http.js";
import { databaseSize } from "../lib/infra.js";
import { saturate, type ClosedLoopResult } from "../lib/load.js";
import { log } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody, type Ricochet } from "../lib/ricochet.js";
import { round } from "../lib/stats.js";
import { deliverAll, type DeliveryRun } from "./e2e.js";

const MB = 2 ** 20;
type Counts = Record<string, number>;

/** % of one core per 1,000 requests/s, for every measured process group. */
function costPerThousand(cpu: Record<string, number> | undefined, perSecond: number): Record<string, number> {
  if (!cpu || !(perSecond > 0)) return {};
  return Object.fromEntries(Object.entries(cpu).filter(([group]) => group !== "other").map(([group, share]) => [group, round((share * 1000) / perSecond)]));
}

/** Throughput at which Redis would take a whole core, were its share linear in the throughput. */
const redisCoreAt = (cpu: Record<string, number> | undefined, perSecond: number) => (cpu?.redis ? Math.round((perSecond * 100) / cpu.redis) : NaN);

/** Size of the stack's tables, once its queues are idle (the last attempts are written after the 200). */
async function databaseGrowth(stack: Ricochet, before: Awaited<ReturnType<typeof databaseSize>>, requests: number) {
  const idle = (q: { jobs: Counts; callbacks: Counts }) => !q.jobs.waiting && !q.jobs.active && !q.jobs.delayed && !q.callbacks.waiting && !q.callbacks.active && !q.callbacks.delayed;
  await waitFor(() => stack.admin<{ jobs: Counts; callbacks: Counts }>("GET", "/admin/v1/queues"), idle, 10_000, 200);
  const after = await databaseSize(stack.databaseUrl!);
  const perMillion = (bytes: number) => (requests ? round(((bytes / requests) * 1e6) / MB) : NaN);
  return {
    requests,
    bytesBefore: before.bytes,
    bytesAfter: after.bytes,
    bytesPerRequest: requests ? Math.round((after.bytes - before.bytes) / requests) : NaN,
    /** MB (2^20 bytes) per million requests submitted with a callback and delivered. */
    mbPerMillion: perMillion(after.bytes - before.bytes),
    /** Each table's growth (indexes and TOAST included), in MB per million requests. */
    byTableMbPerMillion: Object.fromEntries(Object.entries(after.byTable).map(([table, bytes]) => [table, perMillion(bytes - (before.byTable[table] ?? 0))])),
  };
}

async function measure(configuration: ScaleConfiguration, receiver: Receiver) {
  const { apis, workers, name } = configuration;
  const stack = await startRicochet(`scale-${name}`, { topology: "split", apis, workers });
  try {
    const cpuOf = stack.cpuGroups();
    const before = await databaseSize(stack.databaseUrl!);
    const endToEnd: DeliveryRun = await deliverAll({ url: stack.submitUrl, urls: stack.submitUrls, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, receiver, config.scaleE2e, cpuOf);
    log(`scale ${name}: end to end ${endToEnd.delivered}/${endToEnd.requested} in ${endToEnd.seconds} s → ${endToEnd.deliveriesPerSecond}/s${endToEnd.complete ? "" : " (INCOMPLETE)"} cpu ${JSON.stringify(endToEnd.cpu)}`);
    const database = await databaseGrowth(stack, before, endToEnd.delivered);
    log(`scale ${name}: PostgreSQL ${database.bytesBefore} → ${database.bytesAfter} bytes after ${database.requests} requests: ${database.mbPerMillion} MB per million`);
    const submit: ClosedLoopResult & { runs: number } = await saturate({ url: stack.submitUrl, urls: stack.submitUrls, headers: stack.authHeaders, body: submitBody() }, cpuOf);
    log(`scale ${name}: submit ${submit.okPerSecond}/s, p50 ${submit.p50ms} ms, p99 ${submit.p99ms} ms (non-2xx ${submit.non2xx}, errors ${submit.errors}) cpu ${JSON.stringify(submit.cpu)}`);
    return {
      name,
      apis,
      workers,
      endToEnd: { ...endToEnd, costPerThousand: costPerThousand(endToEnd.cpu, endToEnd.deliveriesPerSecond), redisCoreAt: redisCoreAt(endToEnd.cpu, endToEnd.deliveriesPerSecond) },
      submit: { ...submit, costPerThousand: costPerThousand(submit.cpu, submit.okPerSecond), redisCoreAt: redisCoreAt(submit.cpu, submit.okPerSecond) },
      database,
    };
  } finally {
    await stack.stop();
  }
}

export async function scaling(receiver: Receiver) {
  const startedAt = performance.now();
  const configurations = [];
  for (const configuration of config.scale) configurations.push(await measure(configuration, receiver));
  const reference = configurations[0]!;
  const withRatios = configurations.map((c) => ({
    ...c,
    endToEndRatio: round(c.endToEnd.deliveriesPerSecond / reference.endToEnd.deliveriesPerSecond, 2),
    submitRatio: round(c.submit.okPerSecond / reference.submit.okPerSecond, 2),
  }));
  const seconds = round((performance.now() - startedAt) / 1000);
  log(`scale: ${configurations.map((c) => c.name).join(", ")} measured in ${seconds} s`);
  return { cores: cpus().length, seconds, e2eRequests: config.scaleE2e, configurations: withRatios };
}
