/**
 * Open-loop load generator, run as its own process: sends request i at t0 + i/rate whatever
 * happened to earlier requests, and measures each latency from that SCHEDULED time, so a
 * stalled server cannot hide its stall by slowing the generator down (no coordinated omission).
 *
 * argv[2]: JSON {url, headers, body, rate, seconds, warmupSeconds, connections, graceSeconds}.
 * Requests scheduled in the first `warmupSeconds` are sent but not counted. Prints one JSON line.
 */
import { Pool } from "undici";
import { round, summarize } from "../lib/stats.js";

type Spec = { url: string; headers: Record<string, string>; body: string; rate: number; seconds: number; warmupSeconds: number; connections: number; graceSeconds: number };
const spec = JSON.parse(process.argv[2] ?? "{}") as Spec;
const url = new URL(spec.url);
if (url.hostname !== "127.0.0.1") throw new Error("the bench only sends load to 127.0.0.1");

// Enough connections that the pool is not the bottleneck; undici queues beyond them, and that
// queueing is part of the measured latency, as it would be for a real client.
const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });
let closing = false; // set once the grace period is over: the errors that follow are ours
const total = Math.round(spec.rate * spec.seconds);
const warmup = Math.round(spec.rate * spec.warmupSeconds);
const interval = 1000 / spec.rate;

const latencies: number[] = [];
let ok = 0;
let okMeasured = 0;
let non2xx = 0;
let errors = 0;
let inFlight = 0;
let maxSendLag = 0;
let lastDone = 0;
const pending = new Map<number, number>(); // index → scheduled time, while unanswered

const t0 = performance.now() + 20;

function send(i: number, scheduled: number) {
  const measured = i >= warmup;
  inFlight++;
  pending.set(i, scheduled);
  pool
    .request({ path: url.pathname, method: "POST", headers: spec.headers, body: spec.body })
    .then(async (response) => {
      await response.body.dump();
      const done = performance.now();
      lastDone = done;
      if (response.statusCode >= 200 && response.statusCode < 300) {
        ok++;
        if (measured) okMeasured++;
      } else non2xx++;
      if (measured) latencies.push(done - scheduled);
    })
    .catch(() => {
      if (!closing) errors++;
    })
    .finally(() => {
      inFlight--;
      if (!closing) pending.delete(i);
    });
}

// A 1 ms timer and a catch-up loop: every request whose time has come is sent now, stamped
// with its scheduled time. (A busy loop would be more punctual and eat a core of the two.)
let next = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (next < total && t0 + next * interval <= now) {
      const scheduled = t0 + next * interval;
      maxSendLag = Math.max(maxSendLag, now - scheduled);
      send(next++, scheduled);
    }
    if (next < total) setTimeout(tick, 1);
    else resolve();
  };
  setTimeout(tick, Math.max(0, t0 - performance.now()));
});

// Let the answers come in, up to the grace period; what is still open then counts as unfinished.
const scheduleEnd = t0 + total * interval;
while (inFlight > 0 && performance.now() < scheduleEnd + spec.graceSeconds * 1000) await new Promise((resolve) => setTimeout(resolve, 10));
const cutoff = performance.now();
let unfinished = 0;
for (const [i, scheduled] of pending) {
  if (i < warmup) continue;
  unfinished++;
  latencies.push(cutoff - scheduled); // a lower bound of its latency
}
closing = true;

const measuredStart = t0 + warmup * interval;
const span = Math.max(scheduleEnd, lastDone) - measuredStart;
const summary = summarize(latencies);
console.log(
  JSON.stringify({
    offeredPerSecond: spec.rate,
    seconds: spec.seconds,
    sent: next,
    ok,
    non2xx,
    errors,
    unfinished,
    achievedPerSecond: round(okMeasured / (span / 1000)),
    p50ms: summary.p50,
    p90ms: summary.p90,
    p99ms: summary.p99,
    maxMs: summary.max,
    maxSendLagMs: round(maxSendLag),
  }),
);
await pool.destroy().catch(() => {});
process.exit(0);
