import { readFileSync } from "node:fs";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { DEFAULT_CALLBACK_RETRY_DELAYS, parseRetryDelays } from "./core/callback-schedule.js";
import { parseDuration } from "./shared/duration.js";
import type { RedisNode, RedisTarget } from "./infra/redis.js";

export { parseDuration };

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const bytes = z.string().transform((text, ctx) => {
  const match = /^\s*(\d+)\s*(b|kb|kib|mb|mib)?\s*$/i.exec(text);
  if (!match) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a size (examples: 1048576, 512kb, 1mb)` });
    return z.NEVER;
  }
  const unit = (match[2] ?? "b").toLowerCase();
  const factor = unit.startsWith("k") ? 1024 : unit.startsWith("m") ? 1024 * 1024 : 1;
  return Number(match[1]) * factor;
});

const list = z.string().transform((text) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean),
);

function isNetworkOrHost(entry: string): boolean {
  if (entry.includes("/")) {
    try {
      ipaddr.parseCIDR(entry);
      return true;
    } catch {
      return false;
    }
  }
  return ipaddr.isValid(entry) || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(entry);
}

/** `host:port,host:port` (IPv6 as `[::1]:6379`). */
const redisNodes = z.string().transform((text, ctx) => {
  const nodes: RedisNode[] = [];
  for (const entry of text.split(",").map((item) => item.trim()).filter(Boolean)) {
    const match = /^(\[[0-9a-f:.]+\]|[^:\s[\]]+):(\d{1,5})$/i.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: "custom", message: `"${entry}" is not host:port` });
      return z.NEVER;
    }
    nodes.push({ host: match[1]!.replace(/^\[|\]$/g, ""), port });
  }
  if (nodes.length === 0) {
    ctx.addIssue({ code: "custom", message: "names no host:port" });
    return z.NEVER;
  }
  return nodes;
});

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** `worker` mode: serve /metrics, /healthz and /readyz on this port (unset: no HTTP). */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .default("redis://127.0.0.1:6379"),
  /** Redis Cluster: seed nodes (any of the cluster's nodes), instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: redisNodes.optional(),
  /** Redis Sentinel: the sentinels, instead of REDIS_URL; the primary is REDIS_SENTINEL_NAME. */
  REDIS_SENTINELS: redisNodes.optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).default("mymaster"),
  /** The sentinels' own password, when they ask for one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** Cluster nodes' / the Sentinel-managed primary's credentials (with REDIS_URL they go in the URL). */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** TLS to cluster nodes / the primary and sentinels (with REDIS_URL, use rediss://). */
  REDIS_TLS: z.enum(["true", "false"]).default("false"),
  /** A PEM file of the CA that signed Redis's certificate, when it is not a public one. */
  REDIS_TLS_CA: z.string().min(1).optional(),
  /** Modules of user actions (paths from the working directory, or packages), comma-separated. */
  ACTIONS: list.default([]),
  /** Built-in actions to offer: a subset of echo,analyse,http, or `none` (default: all; http only with HTTP_ACTION_UPSTREAMS). */
  BUILTIN_ACTIONS: list.transform((names) => (names.length === 1 && names[0] === "none" ? [] : names)).optional(),
  QUEUE_PREFIX: z.string().min(1).default("{ricochet}"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BODY_LIMIT: bytes.default(1024 * 1024),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
  SWEEPER_INTERVAL: duration.default(15_000),
  /** A QUEUED row this old with no job in the queue is enqueued again. */
  SWEEPER_GRACE: duration.default(10_000),
  /** How long a worker's lock on a job lasts; a crashed worker's job runs again after it. */
  JOB_LOCK_DURATION: duration.default(30_000),
  SHUTDOWN_TIMEOUT: duration.default(25_000),
  /** Finished requests (and their callback attempts) older than this are deleted; 0 keeps them forever. */
  RETENTION: duration.default(30 * 86_400_000),
  /** How often a worker runs the retention purge. */
  RETENTION_INTERVAL: duration.pipe(z.number().min(1_000, "must be at least 1s")).default(3_600_000),
  /** On SIGTERM, how long /readyz answers 503 while the API still serves, so load balancers stop sending first. */
  SHUTDOWN_DELAY: duration.default(0),
  /** Bearer token lifetime; 0 means tokens never expire. */
  TOKEN_TTL: duration.default(24 * 3_600_000),
  /** How long an API process may trust a cached token look-up: the bound on revocation. */
  TOKEN_CACHE_TTL: duration.pipe(z.number().max(5_000, "must be at most 5s")).default(5_000),
  /** When set, /metrics asks for `Authorization: Bearer <METRICS_TOKEN>`; unset, it is open. */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** Failed client authentications per client id, and per source address, within AUTH_FAILURE_WINDOW before /oauth answers 429. */
  AUTH_FAILURES_PER_CLIENT: z.coerce.number().int().min(1).max(1_000_000).default(10),
  AUTH_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).max(1_000_000).default(100),
  AUTH_FAILURE_WINDOW: duration.default(15 * 60_000),
  /** Guards the admin API; unset disables it. */
  ADMIN_TOKEN: z.string().min(24, "must be at least 24 characters").optional(),
  /** 32 bytes, base64: encrypts webhook signing secrets at rest. */
  SECRETS_KEY: z
    .string()
    .refine((text) => Buffer.from(text, "base64").length === 32, "must be 32 bytes, base64 (openssl rand -base64 32)")
    .optional(),
  DEFAULT_MAX_CONCURRENT: z.coerce.number().int().min(1).max(100_000).default(10),
  DEFAULT_MAX_QUEUED: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  /** How long a job waits before it tries again for a slot under its tenant's concurrency limit. */
  TENANT_SLOT_RETRY: duration.default(500),
  /** How long a rotated webhook signing secret keeps signing next to the new one. */
  SECRET_ROTATION_OVERLAP: duration.default(24 * 3_600_000),
  /** Comma-separated waits between callback attempts: one per retry. */
  CALLBACK_RETRY_DELAYS: z
    .string()
    .transform((text, ctx) => {
      try {
        return parseRetryDelays(text);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    })
    .default(parseRetryDelays(DEFAULT_CALLBACK_RETRY_DELAYS)),
  CALLBACK_TIMEOUT: duration.default(15_000),
  /** Deliveries in flight per worker process. A waiting attempt costs a socket, not CPU: keep it well above the per-origin cap. */
  CALLBACK_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(200),
  /**
   * Of those, at most this many to one receiver (origin) that answers slowly or fails: a hanging
   * receiver holds only its own. A receiver that answers quickly earns more, one per quick answer,
   * up to CALLBACK_ORIGIN_MAX_CONCURRENCY (src/worker/delivery-slots.ts).
   */
  CALLBACK_ORIGIN_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(10),
  /** The most slots one receiver can earn; half of CALLBACK_CONCURRENCY when unset. */
  CALLBACK_ORIGIN_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).optional(),
  /** CIDRs or host names that outbound calls may reach although private (e.g. 10.0.0.0/8,hooks.internal). */
  OUTBOUND_ALLOW: list
    .refine((entries) => entries.every(isNetworkOrHost), "each entry must be a CIDR (10.0.0.0/8), an IP address or a host name")
    .default([]),
  /** DNS servers (host:port) for outbound look-ups; the system resolver when unset. */
  OUTBOUND_DNS_SERVERS: list.default([]),
  /** Base URLs the `http` action may call, e.g. https://api.example.com/v2/. */
  HTTP_ACTION_UPSTREAMS: list
    .refine((urls) => urls.every((url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)), "each entry must be an http(s) base URL")
    .default([]),
  HTTP_ACTION_TIMEOUT: duration.default(30_000),
  HTTP_ACTION_MAX_BODY: bytes.default(1024 * 1024),
  /** The time limit of an action that declares none of its own. */
  ACTION_TIME_LIMIT: duration.default(3_600_000),
  /** Worker threads for CPU-bound actions (runIn: "thread") per worker process; 0 picks cores - 1 (1 to 4). */
  ACTION_THREADS: z.coerce.number().int().min(0).max(64).default(0),
  /** Heap per action thread, in MB: a thread that needs more is ended and its request FAILS (ACTION_OUT_OF_MEMORY). */
  ACTION_THREAD_MEMORY_MB: z.coerce.number().int().min(16).max(16_384).default(512),
  /** Group commit: at most this many submits share one INSERT and one addBulk. */
  SUBMIT_BATCH_MAX: z.coerce.number().int().min(1).max(5_000).default(500),
  /** Group commit: batches written at once per process (submits; claims and finishes); a second starts only once 32 wait (src/core/lifecycle.ts). */
  SUBMIT_BATCH_FLUSHES: z.coerce.number().int().min(1).max(64).default(2),
  /** PostgreSQL connections per process. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(1000).default(10),
  /** How long a process may sign with a cached webhook secret after a rotation whose broadcast it missed. */
  SIGNING_SECRET_CACHE_TTL: duration.default(10_000),
  /** `npm start` only: start a private redis-server when nothing answers on a loopback REDIS_URL. */
  MANAGED_REDIS: z
    .enum(["auto", "off"])
    .default("auto"),
});

/** Every environment variable the service reads (the README's configuration table lists exactly these). */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[];

/** A variable's value after validation, as the schema reads it (its default when unset). */
export function parseVariable(name: string, value: string | undefined): unknown {
  const schema = envSchema.shape[name as keyof typeof envSchema.shape];
  if (!schema) throw new Error(`no variable ${name}`);
  return schema.parse(value);
}

export type Config = {
  port: number;
  metricsPort: number | undefined;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  /** Where Redis is: one node (redisUrl), a Cluster, or a Sentinel-managed primary. */
  redis: RedisTarget;
  /** The single-node URL (`npm start` may manage a local Redis there); unused in the other modes. */
  redisUrl: string;
  queuePrefix: string;
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  bodyLimit: number;
  workerConcurrency: number;
  sweeperInterval: number;
  sweeperGrace: number;
  jobLockDuration: number;
  shutdownTimeout: number;
  shutdownDelayMs: number;
  retentionMs: number;
  retentionIntervalMs: number;
  managedRedis: "auto" | "off";
  tokenTtlMs: number;
  tokenCacheTtlMs: number;
  adminToken: string | undefined;
  metricsToken: string | undefined;
  authFailuresPerClient: number;
  authFailuresPerAddress: number;
  authFailureWindowMs: number;
  secretsKey: Buffer | undefined;
  defaultMaxConcurrent: number;
  defaultMaxQueued: number;
  tenantSlotRetryMs: number;
  secretRotationOverlapMs: number;
  callbackRetryDelays: number[];
  callbackTimeoutMs: number;
  callbackConcurrency: number;
  callbackOriginConcurrency: number;
  callbackOriginMaxConcurrency: number;
  /** An answer slower than this halves its origin's earned slots. */
  callbackOriginSlowMs: number;
  outboundAllow: string[];
  outboundDnsServers: string[];
  httpActionUpstreams: string[];
  httpActionTimeoutMs: number;
  httpActionMaxBody: number;
  actionTimeLimitMs: number;
  actionThreads: number;
  actionThreadMemoryMb: number;
  actionModules: string[];
  builtinActions: string[] | undefined;
  submitBatchMax: number;
  submitBatchFlushes: number;
  databasePoolSize: number;
  signingSecretCacheTtlMs: number;
};

type Env = z.infer<typeof envSchema>;

/** One way to reach Redis at a time, and each setting only where it means something. */
function redisIssues(e: Env, urlGiven: boolean): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const mode = e.REDIS_CLUSTER_NODES ? "REDIS_CLUSTER_NODES" : e.REDIS_SENTINELS ? "REDIS_SENTINELS" : undefined;
  if (e.REDIS_CLUSTER_NODES && e.REDIS_SENTINELS) {
    issues.push({ path: ["REDIS_SENTINELS"], message: "cannot be used with REDIS_CLUSTER_NODES: choose a Cluster or a Sentinel-managed primary" });
  }
  if (mode && urlGiven) {
    issues.push({ path: ["REDIS_URL"], message: `cannot be used with ${mode}: set credentials in REDIS_USERNAME/REDIS_PASSWORD and TLS with REDIS_TLS=true` });
  }
  if (!mode) {
    for (const name of ["REDIS_USERNAME", "REDIS_PASSWORD"] as const) {
      if (e[name]) issues.push({ path: [name], message: "is for REDIS_CLUSTER_NODES or REDIS_SENTINELS; with REDIS_URL put it in the URL (redis://user:password@host:6379)" });
    }
    if (e.REDIS_TLS === "true") issues.push({ path: ["REDIS_TLS"], message: "is for REDIS_CLUSTER_NODES or REDIS_SENTINELS; with REDIS_URL use rediss://" });
  }
  if (e.REDIS_CLUSTER_NODES && !/\{[^{}]+\}/.test(e.QUEUE_PREFIX)) {
    // BullMQ's scripts touch several keys of a queue at once: on a Cluster they must share a slot.
    issues.push({ path: ["QUEUE_PREFIX"], message: `must contain a hash tag on a Redis Cluster, for example {${e.QUEUE_PREFIX.replace(/[{}]/g, "")}}` });
  }
  if (e.REDIS_TLS_CA) {
    try {
      readFileSync(e.REDIS_TLS_CA, "utf8");
    } catch (error) {
      issues.push({ path: ["REDIS_TLS_CA"], message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})` });
    }
  }
  return issues;
}

function redisTarget(e: Env): RedisTarget {
  const tlsCa = e.REDIS_TLS_CA ? readFileSync(e.REDIS_TLS_CA, "utf8") : undefined;
  const credentials = { username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD, tls: e.REDIS_TLS === "true", tlsCa };
  if (e.REDIS_CLUSTER_NODES) return { mode: "cluster", nodes: e.REDIS_CLUSTER_NODES, ...credentials };
  if (e.REDIS_SENTINELS) {
    return { mode: "sentinel", sentinels: e.REDIS_SENTINELS, name: e.REDIS_SENTINEL_NAME, sentinelPassword: e.REDIS_SENTINEL_PASSWORD, ...credentials };
  }
  return { mode: "single", url: e.REDIS_URL, tlsCa };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once; a bad value throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in most .env tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ""));
  const parsed = envSchema
    .superRefine((e, ctx) => {
      // Servers share one database; each would otherwise invent its own key (see local-secrets.ts).
      if (e.DATABASE_URL && !e.SECRETS_KEY) {
        ctx.addIssue({ code: "custom", path: ["SECRETS_KEY"], message: "is required when DATABASE_URL is set (openssl rand -base64 32)" });
      }
      for (const issue of redisIssues(e, cleaned.REDIS_URL !== undefined)) ctx.addIssue({ code: "custom", ...issue });
    })
    .safeParse(cleaned);
  if (!parsed.success) {
    // The variable and the rule, never the value: it may be a secret (SECRETS_KEY, ADMIN_TOKEN, a
    // password inside DATABASE_URL or REDIS_URL).
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    redis: redisTarget(e),
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    logLevel: e.LOG_LEVEL,
    bodyLimit: e.BODY_LIMIT,
    workerConcurrency: e.WORKER_CONCURRENCY,
    sweeperInterval: e.SWEEPER_INTERVAL,
    sweeperGrace: e.SWEEPER_GRACE,
    jobLockDuration: e.JOB_LOCK_DURATION,
    shutdownTimeout: e.SHUTDOWN_TIMEOUT,
    shutdownDelayMs: e.SHUTDOWN_DELAY,
    retentionMs: e.RETENTION,
    retentionIntervalMs: e.RETENTION_INTERVAL,
    managedRedis: e.MANAGED_REDIS,
    tokenTtlMs: e.TOKEN_TTL,
    tokenCacheTtlMs: e.TOKEN_CACHE_TTL,
    adminToken: e.ADMIN_TOKEN,
    metricsToken: e.METRICS_TOKEN,
    authFailuresPerClient: e.AUTH_FAILURES_PER_CLIENT,
    authFailuresPerAddress: e.AUTH_FAILURES_PER_ADDRESS,
    authFailureWindowMs: e.AUTH_FAILURE_WINDOW,
    secretsKey: e.SECRETS_KEY ? Buffer.from(e.SECRETS_KEY, "base64") : undefined,
    defaultMaxConcurrent: e.DEFAULT_MAX_CONCURRENT,
    defaultMaxQueued: e.DEFAULT_MAX_QUEUED,
    tenantSlotRetryMs: e.TENANT_SLOT_RETRY,
    secretRotationOverlapMs: e.SECRET_ROTATION_OVERLAP,
    callbackRetryDelays: e.CALLBACK_RETRY_DELAYS,
    callbackTimeoutMs: e.CALLBACK_TIMEOUT,
    callbackConcurrency: e.CALLBACK_CONCURRENCY,
    callbackOriginConcurrency: Math.min(e.CALLBACK_ORIGIN_CONCURRENCY, e.CALLBACK_CONCURRENCY),
    callbackOriginMaxConcurrency: Math.min(
      Math.max(e.CALLBACK_ORIGIN_MAX_CONCURRENCY ?? Math.floor(e.CALLBACK_CONCURRENCY / 2), e.CALLBACK_ORIGIN_CONCURRENCY),
      e.CALLBACK_CONCURRENCY,
    ),
    callbackOriginSlowMs: Math.min(1_000, Math.floor(e.CALLBACK_TIMEOUT / 2)),
    outboundAllow: e.OUTBOUND_ALLOW,
    outboundDnsServers: e.OUTBOUND_DNS_SERVERS,
    httpActionUpstreams: e.HTTP_ACTION_UPSTREAMS,
    httpActionTimeoutMs: e.HTTP_ACTION_TIMEOUT,
    httpActionMaxBody: e.HTTP_ACTION_MAX_BODY,
    actionTimeLimitMs: e.ACTION_TIME_LIMIT,
    actionThreads: e.ACTION_THREADS,
    actionThreadMemoryMb: e.ACTION_THREAD_MEMORY_MB,
    actionModules: e.ACTIONS,
    builtinActions: e.BUILTIN_ACTIONS,
    submitBatchMax: e.SUBMIT_BATCH_MAX,
    submitBatchFlushes: e.SUBMIT_BATCH_FLUSHES,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    signingSecretCacheTtlMs: e.SIGNING_SECRET_CACHE_TTL,
  };
}
