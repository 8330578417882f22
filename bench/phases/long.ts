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
 * Flat: the median RSS of the last quarter of the run is at most 10 % (or 16 MB, whichever is
 * larger) above the median of the second quarter. The garbage collector makes RSS saw between a
 * floor and a peak, and both move with its timing: on 2 × AMD EPYC one run's peaks went from
 * 222 to 273 MB between those quarters and another's floors from 200 to 221 MB, neither heap
 * growing. A quarter's median stands for its whole sawtooth, and a leak raises it like
 * everything else. The first quarter may grow (JIT, pools and caches warm up). Floors and peaks
 * are reported beside.
 */
export function judgeFlat(samples: RssSample[]) {
  const at = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(fraction * (samples.length - 1)))]!;
  const quarter = (from: number, to: number) =>
    samples
      .slice(Math.floor(from * samples.length), Math.max(Math.floor(from * samples.length) + 1, Math.ceil(to * samples.length)))
      .map((sample) => sample.rssMb)
      .sort((a, b) => a - b);
  const median = (sorted: number[]) => (sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2);
  const second = quarter(0.25, 0.5);
  const last = quarter(0.75, 1);
  const secondQuarterMedianMb = round(median(second));
  const lastQuarterMedianMb = round(median(last));
  const allowedMb = Math.max(0.1 * secondQuarterMedianMb, 16);
  return {
    startMb: at(0).rssMb,
    midMb: at(0.5).rssMb,
    endMb: at(1).rssMb,
    maxMb: samples.reduce((max, sample) => Math.max(max, sample.rssMb), 0),
    secondQuarterMedianMb,
    lastQuarterMedianMb,
    secondQuarterFloorMb: second[0]!,
    lastQuarterFloorMb: last[0]!,
    secondQuarterPeakMb: second[second.length - 1]!,
    lastQuarterPeakMb: last[last.length - 1]!,
    allowedGrowthMb: round(allowedMb),
    flat: lastQuarterMedianMb - secondQuarterMedianMb <= allowedMb,
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
