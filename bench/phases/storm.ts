/**
 * 4. Redelivery storm: BENCH_STORM requests finish with their callback EXHAUSTED (the receiver
 *    answers 500; CALLBACK_RETRY_DELAYS=1ms, so a series is 2 quick attempts). Then the receiver
 *    answers 200 and one admin call redelivers them all; measured from that call until the
 *    receiver has answered 200 to every new series (webhook-id suffix `_2`).
 */
import { config } from "../lib/config.js";
import { waitFor } from "../lib/http.js";
import { submitAll } from "../lib/load.js";
import { cpuMeter, infraGroups } from "../lib/proc-stats.js";
import { log, sleep } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody } from "../lib/ricochet.js";
import { round } from "../lib/stats.js";

const ATTEMPTS_PER_SERIES = 2;

export async function redeliveryStorm(receiver: Receiver) {
  const k = config.storm;
  const stack = await startRicochet("storm", { topology: config.e2eMode, env: { CALLBACK_RETRY_DELAYS: "1ms" } });
  try {
    const since = new Date(Date.now() - 60_000).toISOString();
    await receiver.reset();
    await receiver.mode("fail", { failAttempts: ATTEMPTS_PER_SERIES });
    const setupStarted = performance.now();
    const submit = await submitAll({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, k);
    const exhausted = await waitFor(receiver.stats, (s) => s.exhausted >= submit.ok, config.maxWait * 1000, 200);
    const setupSeconds = round((performance.now() - setupStarted) / 1000);
    const acknowledged = `${submit.ok} submits acknowledged${submit.complete ? "" : ", submitting stopped at BENCH_MAX_WAIT"}`;
    log(`storm setup: ${exhausted.value.exhausted} callbacks failed ${ATTEMPTS_PER_SERIES} times in ${setupSeconds} s (${acknowledged})${exhausted.met ? "" : " (INCOMPLETE)"}`);

    // The worker records the last attempt after the receiver answered it: let it catch up, then
    // redeliver until every series the receiver exhausted has been restarted.
    await receiver.mode("ok");
    const meter = cpuMeter({ ...stack.cpuGroups(), receiver: () => [receiver.child.pid], ...infraGroups });
    const started = Date.now();
    let redelivered = 0;
    let redeliverCallMs = 0;
    for (let call = 0; call < 20 && redelivered < exhausted.value.exhausted; call++) {
      const callStarted = performance.now();
      const answer = await stack.admin<{ redelivered: number }>("POST", "/admin/v1/tenants/default/callbacks/redeliver", { since });
      if (call === 0) redeliverCallMs = Math.round(performance.now() - callStarted);
      redelivered += answer.redelivered;
      if (redelivered < exhausted.value.exhausted) await sleep(250);
    }
    const remaining = Math.max(1_000, config.maxWait * 1000 - (Date.now() - started));
    const { value: stats, met } = await waitFor(receiver.stats, (s) => (s.okBySeriesNumber["2"] ?? 0) >= redelivered, remaining, 100);
    const cpu = meter.stop();
    const deliveredSeries2 = stats.okBySeriesNumber["2"] ?? 0;
    const seconds = ((stats.lastOkAt || Date.now()) - started) / 1000;
    const result = {
      requested: k,
      exhausted: exhausted.value.exhausted,
      setupComplete: exhausted.met && submit.complete,
      setupSeconds,
      redelivered,
      redeliverCallMs,
      delivered: deliveredSeries2,
      complete: met,
      seconds: round(seconds, 2),
      deliveriesPerSecond: round(deliveredSeries2 / seconds),
      cpu,
    };
    log(`storm: ${deliveredSeries2} of ${redelivered} redelivered in ${result.seconds} s → ${result.deliveriesPerSecond}/s (the admin call answered in ${redeliverCallMs} ms)${met ? "" : " (INCOMPLETE)"}`);
    return result;
  } finally {
    await stack.stop();
  }
}
