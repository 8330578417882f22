/**
 * 3. End to end: submits with a callbackUrl (autocannon, closed loop) until the receiver has
 *    answered 200 to every one: Ricochet against (c) a bare BullMQ worker draining pre-enqueued
 *    jobs and (d) graphile-worker, drained the same way and end to end.
 *    Then, at a fixed offered submit rate, finish → callback latency measured in the receiver.
 */
import { runBullmqDrain, runGraphileDrain, startBareStack, startGraphileApi, startGraphileWorker } from "../lib/baselines.js";
import { config } from "../lib/config.js";
import { waitFor } from "../lib/http.js";
import { openLoop, startAutocannon, type ClosedLoopResult, type Target } from "../lib/load.js";
import { cpuMeter, infraGroups, type PidGroups } from "../lib/proc-stats.js";
import { log } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody, type Ricochet } from "../lib/ricochet.js";
import { round, summarize } from "../lib/stats.js";

export type DeliveryRun = {
  requested: number;
  delivered: number;
  complete: boolean;
  seconds: number;
  /** Callbacks answered 200 per second, from the first submit to the last delivery. */
  deliveriesPerSecond: number;
  submit?: ClosedLoopResult;
  cpu: Record<string, number>;
};

/** Submits `n` requests with a callback and waits (at most BENCH_MAX_WAIT) until all are delivered. */
export async function deliverAll(target: Target, receiver: Receiver, n: number, cpuOf: PidGroups): Promise<DeliveryRun> {
  await receiver.mode("ok");
  await receiver.reset();
  const spawnedAt = Date.now();
  const load = startAutocannon(target, { connections: config.e2eConnections, amount: n });
  const meter = cpuMeter({ ...cpuOf, autocannon: () => [load.child.pid], receiver: () => [receiver.child.pid], ...infraGroups });
  let submit: ClosedLoopResult | undefined;
  const submitted = load.done.then(
    (result) => (submit = result),
    () => undefined, // stopped early or failed: the receiver's count is what counts
  );
  // Until every accepted submit is delivered (a failed submit has nothing to deliver).
  const { value: stats, met } = await waitFor(receiver.stats, (s) => s.okDistinct >= (submit?.ok ?? n), config.maxWait * 1000, 200);
  const cpu = meter.stop();
  if (!met) await load.stop().catch(() => undefined); // a slow service: report what it delivered meanwhile
  await submitted;
  const start = submit?.startedAt ?? spawnedAt;
  const seconds = ((stats.lastOkAt || Date.now()) - start) / 1000;
  return { requested: n, delivered: stats.okDistinct, complete: met, seconds: round(seconds, 2), deliveriesPerSecond: round(stats.okDistinct / seconds), ...(submit ? { submit } : {}), cpu };
}

const describe = (name: string, run: DeliveryRun) =>
  log(`${name}: ${run.delivered}/${run.requested} delivered in ${run.seconds} s → ${run.deliveriesPerSecond}/s${run.complete ? "" : " (INCOMPLETE: BENCH_MAX_WAIT reached)"} cpu ${JSON.stringify(run.cpu)}`);

async function graphileEndToEnd(receiver: Receiver): Promise<DeliveryRun> {
  const api = await startGraphileApi();
  try {
    const worker = await startGraphileWorker(api.databaseUrl, receiver);
    try {
      const run = await deliverAll({ url: api.submitUrl, headers: api.headers, body: submitBody() }, receiver, config.e2e, { api: () => [api.child.pid], worker: () => [worker.pid] });
      describe("(d) graphile end to end", run);
      return run;
    } finally {
      await worker.stop();
    }
  } finally {
    await api.stop();
  }
}

/** Ricochet end to end; `after` runs on the same (warm) stack before it is stopped. */
export async function ricochetEndToEnd<T>(receiver: Receiver, after?: (stack: Ricochet) => Promise<T>) {
  const stack = await startRicochet("e2e", { topology: config.e2eMode });
  try {
    const target = { url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) };
    const run = await deliverAll(target, receiver, config.e2e, stack.cpuGroups());
    describe(`ricochet end to end (${config.e2eMode})`, run);
    return { run, after: after ? await after(stack) : undefined };
  } finally {
    await stack.stop();
  }
}

export async function endToEndBaselines(receiver: Receiver) {
  const c = await runBullmqDrain(receiver, config.baselineJobs);
  const dDrain = await runGraphileDrain(receiver, config.baselineJobs);
  const dEndToEnd = await graphileEndToEnd(receiver);
  return { c, dDrain, dEndToEnd };
}

/**
 * Finish → callback latency at a fixed offered submit rate: the receiver subtracts the body's
 * `asyncRequest.dateFinished` from its own clock (same machine). A short unmeasured run first
 * warms the processes up. The bare stack, (b) + (c) live, is measured the same way at the same
 * rate: its worker sets `dateFinished` as the job runs and POSTs at once, with no record to write.
 */
export async function finishToCallback(receiver: Receiver, rate = config.latencyRate) {
  const stack = await startRicochet("latency", { topology: config.e2eMode });
  let ricochet: LatencyRun;
  try {
    ricochet = await latencyAt({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, stack.cpuGroups(), receiver, rate);
  } finally {
    await stack.stop();
  }
  log(`ricochet finish → callback at ${rate}/s offered: ${describeLatency(ricochet)}`);
  const bare = await startBareStack(receiver);
  let baseline: LatencyRun;
  try {
    baseline = await latencyAt({ url: bare.submitUrl, headers: bare.headers, body: submitBody(receiver.hookUrl) }, { api: () => [bare.child.pid], worker: () => [bare.worker.pid] }, receiver, rate);
  } finally {
    await bare.stop();
  }
  log(`(b)+(c) live finish → callback at ${rate}/s offered: ${describeLatency(baseline)}`);
  return { ...ricochet, baseline };
}

type LatencyRun = Awaited<ReturnType<typeof latencyAt>>;

const describeLatency = ({ submit, finishToCallbackMs: l, complete, delivered }: LatencyRun) =>
  `${submit.achievedPerSecond}/s accepted; p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms over ${l.n} callbacks${complete ? "" : ` (INCOMPLETE: ${delivered} of ${submit.ok})`}`;

async function latencyAt(target: Target, pids: PidGroups, receiver: Receiver, rate: number) {
  await receiver.mode("ok");
  await receiver.reset();
  const warm = await openLoop(target, rate, 2);
  await waitFor(receiver.stats, (s) => s.okDistinct >= warm.ok, config.maxWait * 1000, 200);

  await receiver.mode("ok", { track: true });
  await receiver.reset();
  const submit = await openLoop(target, rate, config.latencySeconds, pids);
  const { value: stats, met } = await waitFor(receiver.stats, (s) => s.okDistinct >= submit.ok, config.maxWait * 1000, 200);
  const { latencies } = await receiver.dump();
  await receiver.mode("ok", { track: false });
  return { offeredPerSecond: rate, seconds: config.latencySeconds, submit, delivered: stats.okDistinct, complete: met, finishToCallbackMs: summarize(latencies) };
}
