/**
 * 7. Worker RSS over a long run: the worker process of a (warm) stack delivers BENCH_LONG
 *    callbacks (or as many as it can in BENCH_LONG_MAX_SECONDS), submitted by autocannon; its
 *    VmRSS is sampled every BENCH_RSS_INTERVAL seconds.
 */
import { config } from "../lib/config.js";
import { startAutocannon } from "../lib/load.js";
import { rssMb } from "../lib/proc-stats.js";
import { log, sleep } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { submitBody, type Ricochet } from "../lib/ricochet.js";
import { round } from "../lib/stats.js";

export type RssSample = { seconds: number; delivered: number; rssMb: number };

/**
 * Flat: the lowest RSS of the last quarter of the run is at most 10 % (or 16 MB, whichever is
 * larger) above the lowest of the second quarter. A leak is memory that survives collection, so
 * it raises the floor the samples fall back to after each collection; the peaks are where the
 * collector happened to run, and V8 lets the heap grow by different amounts between collections
 * at the same load (a run on 2 × AMD EPYC sawed between 188 and 281 MB with its floor flat, and
 * its last quarter's peak 51 MB above its second's). The first quarter may grow (JIT, pools and
 * caches warm up). Peaks are reported beside the floors.
 */
export function judgeFlat(samples: RssSample[]) {
  const at = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(fraction * (samples.length - 1)))]!;
  const quarter = (from: number, to: number) =>
    samples.slice(Math.floor(from * samples.length), Math.max(Math.floor(from * samples.length) + 1, Math.ceil(to * samples.length))).map((sample) => sample.rssMb);
  const second = quarter(0.25, 0.5);
  const last = quarter(0.75, 1);
  const secondQuarterFloorMb = Math.min(...second);
  const lastQuarterFloorMb = Math.min(...last);
  const allowedMb = Math.max(0.1 * secondQuarterFloorMb, 16);
  return {
    startMb: at(0).rssMb,
    midMb: at(0.5).rssMb,
    endMb: at(1).rssMb,
    maxMb: samples.reduce((max, sample) => Math.max(max, sample.rssMb), 0),
    secondQuarterFloorMb,
    lastQuarterFloorMb,
    secondQuarterPeakMb: Math.max(...second),
    lastQuarterPeakMb: Math.max(...last),
    allowedGrowthMb: round(allowedMb),
    flat: lastQuarterFloorMb - secondQuarterFloorMb <= allowedMb,
  };
}

export async function workerRss(stack: Ricochet, receiver: Receiver) {
  const worker = stack.workerProcess;
  if (!worker) throw new Error("the long run needs a stack with a worker process");
  await receiver.mode("ok");
  await receiver.reset();
  const load = startAutocannon({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, { connections: 16, amount: config.long });
  const started = performance.now();
  const samples: RssSample[] = [];
  let lastLog = 0;
  for (;;) {
    const seconds = (performance.now() - started) / 1000;
    const { okDistinct } = await receiver.stats();
    const rss = rssMb(worker.pid);
    if (rss === undefined) throw new Error("the worker process exited during the long run");
    samples.push({ seconds: round(seconds), delivered: okDistinct, rssMb: rss });
    if (seconds - lastLog >= 30) {
      log(`long run: ${okDistinct} delivered after ${Math.round(seconds)} s, worker RSS ${rss} MB`);
      lastLog = seconds;
    }
    if (okDistinct >= config.long || seconds >= config.longMaxSeconds) break;
    await sleep(config.rssInterval * 1000);
  }
  await load.stop().catch(() => undefined);
  const last = samples[samples.length - 1]!;
  const verdict = judgeFlat(samples);
  log(`long run: ${last.delivered} of ${config.long} delivered in ${last.seconds} s; worker RSS start ${verdict.startMb} / mid ${verdict.midMb} / end ${verdict.endMb} MB → ${verdict.flat ? "flat" : "GROWING"}`);
  return { requested: config.long, delivered: last.delivered, complete: last.delivered >= config.long, seconds: last.seconds, deliveriesPerSecond: round(last.delivered / last.seconds), ...verdict, samples };
}
