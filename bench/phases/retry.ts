/**
 * 5. Retry lateness: BENCH_RETRY callbacks whose first attempt fails (the receiver answers 500
 *    to the first attempt of every series, 200 after), with CALLBACK_RETRY_DELAYS=BENCH_RETRY_DELAY.
 *    Each retry is due at attempt 1's startedAt + durationMs + delay (what Ricochet itself
 *    computes as nextAttemptAt; read back per request from …/callback/attempts). Lateness is the
 *    receiver's arrival time of attempt 2 minus that, and attempt 2's own startedAt minus that.
 */
import { config } from "../lib/config.js";
import { eachLimited, waitFor } from "../lib/http.js";
import { submitAll } from "../lib/load.js";
import { log } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody } from "../lib/ricochet.js";
import { round, summarize } from "../lib/stats.js";

type Attempt = { series: number; attempt: number; startedAt: string; durationMs: number; statusCode: number | null };

/** `10s`, `500ms`, `1m`, `1h` or bare milliseconds, as Ricochet reads CALLBACK_RETRY_DELAYS. */
export function durationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a duration`);
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(match[2] ?? "ms") as "ms" | "s" | "m" | "h"];
}

export async function retryLateness(receiver: Receiver) {
  const delay = durationMs(config.retryDelay);
  const stack = await startRicochet("retry", { topology: config.e2eMode, env: { CALLBACK_RETRY_DELAYS: config.retryDelay } });
  try {
    await receiver.reset();
    await receiver.mode("failFirst");
    const started = performance.now();
    const submit = await submitAll({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, config.retry);
    const { value: stats, met } = await waitFor(receiver.stats, (s) => s.secondAttempts >= submit.ok, config.maxWait * 1000 + delay, 200);
    const acknowledged = `${submit.ok} submits acknowledged${submit.complete ? "" : ", submitting stopped at BENCH_MAX_WAIT"}`;
    log(`retry: ${stats.secondAttempts} second attempts arrived after ${Math.round((performance.now() - started) / 1000)} s (${acknowledged})${met ? "" : " (INCOMPLETE)"}`);
    const { secondAttemptAt } = await receiver.dump();
    await receiver.mode("ok");

    // Read back when Ricochet made each attempt (after the load, so it does not disturb it).
    const ids = Object.keys(secondAttemptAt);
    const rows = await eachLimited(ids, 16, async (id) => {
      const { attempts } = await stack.get<{ attempts: Attempt[] }>(`/api/v1/async/${id}/callback/attempts`);
      const first = attempts.find((a) => a.series === 1 && a.attempt === 1);
      const second = attempts.find((a) => a.series === 1 && a.attempt === 2);
      if (!first || !second) return undefined;
      const firstEnded = Date.parse(first.startedAt) + first.durationMs;
      const due = firstEnded + delay;
      return { due, firstEnded, arrived: secondAttemptAt[id]! - due, started: Date.parse(second.startedAt) - due };
    });
    const known = rows.filter((row): row is NonNullable<typeof row> => row !== undefined);
    // Retries that fell due while first attempts were still being made compete with the setup's
    // own submits, runs and first attempts: on a machine that needs longer than the delay for the
    // setup, their lateness measures its spare capacity rather than the schedule.
    const lastFirstEnded = known.reduce((max, row) => Math.max(max, row.firstEnded), 0);
    const overlapped = known.filter((row) => row.due < lastFirstEnded);
    const alone = known.filter((row) => row.due >= lastFirstEnded);
    const dues = known.map((row) => row.due);
    const perSecond = new Map<number, number>();
    for (const due of dues) perSecond.set(Math.floor(due / 1000), (perSecond.get(Math.floor(due / 1000)) ?? 0) + 1);
    const result = {
      requested: config.retry,
      retryDelay: config.retryDelay,
      measured: known.length,
      complete: met && submit.complete,
      /** Over how long the retries fell due, and the most that fell due within one second. */
      dueWindowSeconds: dues.length ? round((dues.reduce((a, b) => Math.max(a, b)) - dues.reduce((a, b) => Math.min(a, b))) / 1000) : NaN,
      peakDuePerSecond: [...perSecond.values()].reduce((a, b) => Math.max(a, b), 0),
      latenessAtReceiverMs: summarize(known.map((row) => row.arrived)),
      latenessOfStartMs: summarize(known.map((row) => row.started)),
      /** Due before the last first attempt ended (while the setup still loaded the machine), and after. */
      dueDuringSetup: { n: overlapped.length, latenessAtReceiverMs: summarize(overlapped.map((row) => row.arrived)) },
      dueAfterSetup: { n: alone.length, latenessAtReceiverMs: summarize(alone.map((row) => row.arrived)) },
    };
    log(`retry lateness at the receiver: p50 ${result.latenessAtReceiverMs.p50} ms, p99 ${result.latenessAtReceiverMs.p99} ms, max ${result.latenessAtReceiverMs.max} ms (${known.length} retries due within ${result.dueWindowSeconds} s, at most ${result.peakDuePerSecond} in one second)${overlapped.length ? `; ${overlapped.length} fell due while first attempts were still being made: p99 ${result.dueDuringSetup.latenessAtReceiverMs.p99} ms, the other ${alone.length} p99 ${result.dueAfterSetup.latenessAtReceiverMs.p99} ms` : ""}`);
    return result;
  } finally {
    await stack.stop();
  }
}
