import { serveApp } from "../api/http-server.js";
import { ConfigError, loadConfig, type Config } from "../config.js";
import { withLocalSecrets } from "../infra/local-secrets.js";
import { redisAnswers, redisServerOnPath, startManagedRedis } from "../infra/managed-redis.js";
import { createLogger } from "../logger.js";
import { createOpsApp } from "../api/app.js";
import { createRuntime, type Roles } from "../runtime.js";

const MODES: Record<string, Roles> = {
  start: { api: true, worker: true },
  api: { api: true, worker: false },
  worker: { api: false, worker: true },
};

const REDIS_HELP = `Ricochet needs Redis >= 6.2 (with maxmemory-policy noeviction). Either:
  - install it and start it:      redis-server --port 6379
  - or with Docker:               docker compose up -d redis
  - or point REDIS_URL at one:    REDIS_URL=redis://host:6379 npm start
  - Redis Cluster or Sentinel:    see README: Redis deployments`;

/** Runs the service in one of its modes until SIGTERM/SIGINT. */
export async function runService(mode: string): Promise<void> {
  const roles = MODES[mode];
  if (!roles) {
    console.error(`Unknown mode "${mode}". Use one of: ${Object.keys(MODES).join(", ")}`);
    process.exit(2);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  config = withLocalSecrets(config);
  const logger = createLogger(config.logLevel);

  let managedRedis: { stop(): Promise<void> } | undefined;
  // A Cluster or Sentinel deployment is never managed: createRuntime reports it unreachable.
  if (config.redis.mode === "single" && !(await redisAnswers(config.redisUrl, undefined, config.redis.tlsCa))) {
    const loopback = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(new URL(config.redisUrl).hostname);
    const mayManage = mode === "start" && loopback && config.managedRedis === "auto" && redisServerOnPath();
    if (!mayManage) {
      console.error(`Redis is not reachable at ${config.redisUrl}.\n${REDIS_HELP}`);
      process.exit(1);
    }
    logger.info({ dataDir: config.dataDir }, "no Redis answered; starting a private redis-server (MANAGED_REDIS=off to disable)");
    managedRedis = await startManagedRedis(config.redisUrl, config.dataDir);
  }

  let runtime: Awaited<ReturnType<typeof createRuntime>>;
  try {
    runtime = await createRuntime(config, { logger, roles });
  } catch (error) {
    // Nothing started is left behind: the private Redis goes with a failed start-up.
    await managedRedis?.stop();
    throw error;
  }
  const app = runtime.app ?? (config.metricsPort !== undefined ? createOpsApp(runtime.services) : undefined);
  const port = runtime.app ? config.port : config.metricsPort;
  const server = app
    ? serveApp(app.fetch, { port, hostname: config.host }, (info) =>
        logger.info({ port: info.port, mode, database: runtime.database.kind }, runtime.app ? "ricochet is listening" : "ricochet worker serving /metrics"),
      )
    : undefined;
  if (!runtime.app) logger.info({ mode, database: runtime.database.kind }, "ricochet worker started");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: no new work; letting active jobs finish");
    await new Promise<void>((done) => {
      if (!server) return done();
      server.close(() => done());
      // Long-polls and event streams would hold the close open: end them after a short grace.
      setTimeout(() => server.closeAllConnections(), 2_000).unref();
    });
    await runtime.close();
    await managedRedis?.stop();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

export function runServiceOrExit(mode: string): void {
  runService(mode).catch((error: unknown) => {
    console.error("ricochet failed to start:", error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
