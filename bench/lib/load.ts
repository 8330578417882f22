/**
 * The load generators, always in their own processes: bench/load/closed-loop.ts (autocannon:
 * each of `connections` sends its next request when the previous answer arrives) and
 * bench/load/open-loop.ts (fixed offered rate, latency from the scheduled send time).
 */
import { join } from "node:path";
import { config } from "./config.js";
import { cpuMeter, infraGroups, NOISY_OTHER_CPU, type PidGroups } from "./proc-stats.js";
import { spawnTs, tailOf } from "./procs.js";
import { round } from "./stats.js";

export type Target = {
  url: string;
  headers: Record<string, string>;
  body: string;
  /**
   * Several API processes (the scale phase): autocannon spreads its connections over these
   * instead of `url`, round robin (connection i → urls[i % n]). The open-loop generator uses `url`.
   */
  urls?: string[];
};

export type ClosedLoopResult = {
  connections: number;
  seconds: number;
  /** 2xx answers per second: what was accepted, not merely answered. */
  okPerSecond: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxMs: number;
  startedAt: number;
  finishedAt: number;
  cpu?: Record<string, number>;
};

type AutocannonJson = {
  duration: number;
  start: string;
  finish: string;
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  latency: { p50: number; p90: number; p99: number; max: number };
};

/**
 * Starts autocannon (bench/load/closed-loop.ts) against `target`: for `seconds`, or until
 * `amount` requests were sent. `done` resolves with its figures; `stop()` ends it early and
 * resolves with the figures so far. `cpuOf` names the processes whose CPU share to record
 * (PostgreSQL, Redis and the load generator itself are added).
 */
export function startAutocannon(target: Target, load: { connections: number; seconds?: number; amount?: number; cpuOf?: PidGroups; timeoutSeconds?: number }) {
  const { urls, ...single } = target;
  const spec = { ...single, url: urls?.length ? urls : target.url, connections: load.connections, seconds: load.seconds ?? config.duration, amount: load.amount, timeoutSeconds: load.timeoutSeconds ?? 30 };
  const child = spawnTs("autocannon", join(config.benchDir, "load/closed-loop.ts"), [JSON.stringify(spec)], { cwd: config.root, captureStdout: true });
  const meter = load.cpuOf ? cpuMeter({ ...load.cpuOf, autocannon: () => [child.pid], ...infraGroups }) : undefined;
  const done: Promise<ClosedLoopResult> = child.exited.then((code) => {
    const cpu = meter?.stop();
    if (code !== 0) throw new Error(`autocannon exited with ${code}: ${tailOf(child.logFile)}`);
    const json = JSON.parse(child.stdout()) as AutocannonJson;
    return {
      connections: load.connections,
      seconds: json.duration,
      okPerSecond: round(json["2xx"] / json.duration),
      ok: json["2xx"],
      non2xx: json.non2xx,
      errors: json.errors,
      timeouts: json.timeouts,
      p50ms: json.latency.p50,
      p90ms: json.latency.p90,
      p99ms: json.latency.p99,
      maxMs: json.latency.max,
      startedAt: Date.parse(json.start),
      finishedAt: Date.parse(json.finish),
      ...(cpu ? { cpu } : {}),
    };
  });
  return {
    child,
    done,
    /** Stops it now (SIGTERM: autocannon stops and still reports what it did). */
    stop() {
      child.process.kill("SIGTERM");
      return done;
    },
  };
}

/**
 * Submits `amount` requests (closed loop) but gives up after BENCH_MAX_WAIT: a slow service
 * then reports what it accepted meanwhile (`complete: false`).
 */
export async function submitAll(target: Target, amount: number, connections = config.e2eConnections): Promise<ClosedLoopResult & { complete: boolean }> {
  const load = startAutocannon(target, { connections, amount });
  const timer = setTimeout(() => void load.stop().catch(() => undefined), config.maxWait * 1000);
  const result = await load.done.finally(() => clearTimeout(timer));
  return { ...result, complete: result.ok + result.non2xx + result.errors >= amount };
}

/**
 * Submit at saturation: an unmeasured warm-up, then the measured run. A run during which other
 * processes took more than half a core is repeated (BENCH_NOISE_RETRIES times at most) and the
 * quietest kept, since the headline ratios come from these runs.
 */
export async function saturate(target: Target, cpuOf: PidGroups, seconds = config.duration): Promise<ClosedLoopResult & { runs: number }> {
  if (config.warmup > 0) await startAutocannon(target, { connections: config.connections, seconds: config.warmup }).done;
  let best: ClosedLoopResult | undefined;
  let runs = 0;
  while (runs <= config.noiseRetries) {
    const result = await startAutocannon(target, { connections: config.connections, seconds, cpuOf }).done;
    runs++;
    if (!best || (result.cpu?.other ?? 0) < (best.cpu?.other ?? 0)) best = result;
    if ((best.cpu?.other ?? 0) <= NOISY_OTHER_CPU) break;
  }
  return { ...best!, runs };
}

export type OpenLoopResult = {
  offeredPerSecond: number;
  seconds: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Still unanswered `graceSeconds` after the last scheduled send: counted in the latencies at their age then. */
  unfinished: number;
  achievedPerSecond: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxMs: number;
  /** How late the generator itself sent, at worst (ms after the scheduled time). */
  maxSendLagMs: number;
  cpu?: Record<string, number>;
};

/** Runs bench/load/open-loop.ts at `rate` requests/s for `seconds`. */
export async function openLoop(target: Target, rate: number, seconds: number, cpuOf?: PidGroups): Promise<OpenLoopResult> {
  const spec = { ...target, rate, seconds, warmupSeconds: Math.min(1, seconds / 5), connections: config.openConnections, graceSeconds: config.openGrace };
  const child = spawnTs("open-loop", join(config.benchDir, "load/open-loop.ts"), [JSON.stringify(spec)], { cwd: config.root, captureStdout: true });
  const meter = cpuOf ? cpuMeter({ ...cpuOf, generator: () => [child.pid], ...infraGroups }) : undefined;
  const code = await child.exited;
  const cpu = meter?.stop();
  if (code !== 0) throw new Error(`the open-loop generator exited with ${code}: ${tailOf(child.logFile)}`);
  return { ...(JSON.parse(child.stdout()) as OpenLoopResult), ...(cpu ? { cpu } : {}) };
}
