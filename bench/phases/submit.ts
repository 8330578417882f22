/**
 * 1. Submit at saturation: autocannon, BENCH_CONNECTIONS connections, BENCH_DURATION s, against
 *    Ricochet's API alone, (b) Hono + BullMQ, and (d) Hono + graphile-worker.
 * 2. Submit latency at fixed offered rates (open loop), Ricochet's API alone and (b).
 * Each server gets a fresh database / prefix, and is stopped before the next one starts, so
 * they never share the two cores.
 */
import { startGraphileApi, startHonoBullmq, type SubmitServer } from "../lib/baselines.js";
import { config } from "../lib/config.js";
import { openLoop, saturate, type ClosedLoopResult, type OpenLoopResult, type Target } from "../lib/load.js";
import { log } from "../lib/procs.js";
import { startRicochet, submitBody } from "../lib/ricochet.js";
import { round } from "../lib/stats.js";

const describe = (name: string, r: ClosedLoopResult & { runs?: number }) =>
  log(`${name}: ${r.okPerSecond} submits/s, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms (non-2xx ${r.non2xx}, errors ${r.errors}) cpu ${JSON.stringify(r.cpu)}${(r.runs ?? 1) > 1 ? ` (quietest of ${r.runs} runs)` : ""}`);

async function saturateBaseline(server: SubmitServer): Promise<ClosedLoopResult> {
  try {
    const result = await saturate({ url: server.submitUrl, headers: server.headers, body: submitBody() }, { server: () => [server.child.pid] });
    describe(server.name, result);
    return result;
  } finally {
    await server.stop();
  }
}

export async function submitSaturation() {
  const ricochet = await startRicochet("submit", { topology: "api" });
  let r: ClosedLoopResult;
  try {
    r = await saturate({ url: ricochet.submitUrl, headers: ricochet.authHeaders, body: submitBody() }, { ricochetApi: () => [ricochet.api.pid] });
    describe("ricochet api", r);
  } finally {
    await ricochet.stop();
  }
  const b = await saturateBaseline(await startHonoBullmq());
  const d = await saturateBaseline(await startGraphileApi());
  return { ricochet: r, b, d, ratioToB: round(r.okPerSecond / b.okPerSecond, 2), ratioToD: round(r.okPerSecond / d.okPerSecond, 2) };
}

/**
 * Each rate against a fresh server (and database / prefix): the API alone accumulates QUEUED
 * requests, and one rate's backlog must not slow the next one down.
 */
async function ratesAgainst(name: string, start: () => Promise<{ target: Target; pid: number; stop(): Promise<void> }>): Promise<OpenLoopResult[]> {
  const results: OpenLoopResult[] = [];
  for (const rate of config.rates) {
    const server = await start();
    try {
      const result = await openLoop(server.target, rate, config.openSeconds, { server: () => [server.pid] });
      log(`${name} @ ${rate}/s offered: achieved ${result.achievedPerSecond}/s, p50 ${result.p50ms} ms, p99 ${result.p99ms} ms, non-2xx ${result.non2xx}, errors ${result.errors}, unfinished ${result.unfinished} (generator lag ≤ ${result.maxSendLagMs} ms) cpu ${JSON.stringify(result.cpu)}`);
      results.push(result);
    } finally {
      await server.stop();
    }
  }
  return results;
}

export async function submitOpenLoop() {
  const ricochet = await ratesAgainst("ricochet api", async () => {
    const stack = await startRicochet("open-loop", { topology: "api" });
    return { target: { url: stack.submitUrl, headers: stack.authHeaders, body: submitBody() }, pid: stack.api.pid, stop: stack.stop };
  });
  const b = await ratesAgainst("(b) hono+bullmq", async () => {
    const server = await startHonoBullmq();
    return { target: { url: server.submitUrl, headers: server.headers, body: submitBody() }, pid: server.child.pid, stop: server.stop };
  });
  return { ricochet, b };
}
