const num = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

/** Knobs, each overridable from the environment (defaults sized for a 2-core CI machine). */
export const KNOBS = {
  /** Submits per second while a fault is injected. */
  rate: num("FAULTS_RATE", 25),
  /** How long a scenario waits for everything accepted to settle. */
  settleMs: num("FAULTS_SETTLE_MS", 90_000),
  /** Worker kills in scenarios 1 and 2. */
  kills: num("FAULTS_KILLS", 3),
  /** API kills in scenario 4. */
  apiKills: num("FAULTS_API_KILLS", 2),
  /** Redis kills (each followed by a restart on the same port). */
  redisKills: num("FAULTS_REDIS_KILLS", 2),
  /** Sentinel failovers (the primary killed, the replica promoted, the old one back as a replica). */
  sentinelFailovers: num("FAULTS_SENTINEL_FAILOVERS", 2),
  /** How long the private Redis stays down. */
  redisDownMs: num("FAULTS_REDIS_DOWN_MS", 3_000),
  /** Short PostgreSQL outages, and how long each lasts. */
  pgShortOutages: num("FAULTS_PG_SHORT_OUTAGES", 10),
  pgShortOutageMs: num("FAULTS_PG_SHORT_OUTAGE_MS", 1_500),
  /** The one long PostgreSQL outage (10–30 s for a thorough run; 8 s by default for CI). */
  pgLongOutageMs: num("FAULTS_PG_LONG_OUTAGE_MS", 8_000),
  /** pg_terminate_backend rounds. */
  pgTerminations: num("FAULTS_PG_TERMINATIONS", 3),
  /** After a fault ends, 503s are still expected for this long (Retry-After is 5 s; pools reconnect). */
  recoverySlackMs: num("FAULTS_RECOVERY_SLACK_MS", 6_000),
  /** The worker's RSS must stay under this in the bad-receivers scenario. */
  maxWorkerRssMb: num("FAULTS_MAX_WORKER_RSS_MB", 500),
};
