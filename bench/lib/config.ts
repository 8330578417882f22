/**
 * Every size and duration of `npm run bench`, from the environment (documented in
 * README.md, section Benchmarks). Defaults aim at a default run of about 10 minutes on 2 cores
 * for a service that meets its targets; a slower service hits BENCH_MAX_WAIT instead and its
 * figures are marked incomplete.
 */
import { fileURLToPath } from "node:url";

const num = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number (got ${JSON.stringify(raw)})`);
  return value;
};
const str = (name: string, fallback: string): string => process.env[name] || fallback;

export const PHASES = ["submit", "open", "e2e", "latency", "long", "storm", "retry", "redis", "pglite", "scale"] as const;
export type Phase = (typeof PHASES)[number];

function selectedPhases(): Set<Phase> {
  const only = process.env.BENCH_ONLY;
  if (!only) return new Set(PHASES);
  const names = only.split(",").map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(PHASES as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown phase(s) ${unknown.join(", ")}; known: ${PHASES.join(", ")}`);
  return new Set(names as Phase[]);
}

export type ScaleConfiguration = { apis: number; workers: number; name: string };

/** BENCH_SCALE "1x1,2x1,1x2,2x2": N api × M worker processes; 1x1, the reference, comes first. */
function scaleConfigurations(spec: string): ScaleConfiguration[] {
  const list = spec.split(",").map((item) => item.trim()).filter(Boolean).map((item) => {
    const match = /^(\d+)x(\d+)$/i.exec(item);
    const apis = Number(match?.[1]);
    const workers = Number(match?.[2]);
    if (!match || apis < 1 || workers < 1) throw new Error(`BENCH_SCALE: "${item}" is not <api processes>x<worker processes>, both ≥ 1 (e.g. "1x1,2x2")`);
    return { apis, workers, name: `${apis}x${workers}` };
  });
  const unique = [{ apis: 1, workers: 1, name: "1x1" }, ...list].filter((c, i, all) => all.findIndex((o) => o.name === c.name) === i);
  return unique;
}

export const config = {
  /** The tree whose `src/main.ts` is benchmarked: this checkout unless BENCH_ROOT says otherwise. */
  root: str("BENCH_ROOT", fileURLToPath(new URL("../..", import.meta.url))),
  benchDir: fileURLToPath(new URL("..", import.meta.url)),
  phases: selectedPhases(),
  adminDatabaseUrl: str("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
  redisUrl: str("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),

  // 1. submit at saturation (autocannon, closed loop)
  connections: num("BENCH_CONNECTIONS", 64),
  duration: num("BENCH_DURATION", 10),
  warmup: num("BENCH_WARMUP", 2),
  // 2. open loop
  rates: str("BENCH_RATES", "1000,2000,5000").split(",").map(Number),
  openSeconds: num("BENCH_OPEN_SECONDS", 10),
  openConnections: num("BENCH_OPEN_CONNECTIONS", 256),
  openGrace: num("BENCH_OPEN_GRACE", 10),
  // 3. end to end and the drain baselines (c), (d)
  e2e: num("BENCH_E2E", 10_000),
  e2eConnections: num("BENCH_E2E_CONNECTIONS", 32),
  e2eMode: str("BENCH_E2E_MODE", "split") as "split" | "start",
  baselineJobs: num("BENCH_BASELINE_JOBS", 10_000),
  latencyRate: num("BENCH_LATENCY_RATE", 1000),
  latencySeconds: num("BENCH_LATENCY_SECONDS", 10),
  /** The host in the callback URL every stack POSTs to (the receiver listens on 127.0.0.1): a name such as localhost puts a host name on the path, as receivers have. */
  callbackHost: str("BENCH_CALLBACK_HOST", "127.0.0.1"),
  // 4.–7.
  storm: num("BENCH_STORM", 20_000),
  retry: num("BENCH_RETRY", 10_000),
  /** Longer than the setup takes (10,000 submits and first attempts: 9–13 s on 2 slow cores), so no retry falls due under the setup's own closed-loop load. */
  retryDelay: str("BENCH_RETRY_DELAY", "30s"),
  pending: num("BENCH_PENDING", 10_000),
  long: num("BENCH_LONG", 200_000),
  longMaxSeconds: num("BENCH_LONG_MAX_SECONDS", 120),
  rssInterval: num("BENCH_RSS_INTERVAL", 2),
  pgliteE2e: num("BENCH_PGLITE_E2E", 2_000),
  // 9. scale: N api × M worker processes, beside 1 × 1 (always measured first)
  scale: scaleConfigurations(str("BENCH_SCALE", "1x1,2x2")),
  scaleE2e: num("BENCH_SCALE_E2E", 10_000),

  /** The longest any phase waits for deliveries before it reports what it has (marked incomplete). */
  maxWait: num("BENCH_MAX_WAIT", 120),
  /** Submit-at-saturation runs repeated when something else took over half a core meanwhile. */
  noiseRetries: num("BENCH_NOISE_RETRIES", 2),
  workerConcurrency: num("BENCH_WORKER_CONCURRENCY", 100),
  callbackConcurrency: num("BENCH_CALLBACK_CONCURRENCY", 100),
  /** Keep the child processes' logs (they are deleted after a successful run). */
  keepLogs: process.env.BENCH_KEEP_LOGS === "1",
  /** Ricochet's LOG_LEVEL (`info`, its default, writes three lines per request). */
  logLevel: str("BENCH_LOG_LEVEL", "warn"),
};

export type BenchConfig = typeof config;
