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
  const shutdown = async (signal: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    // 1. Readiness answers 503, long-polls answer and event streams end (clients reconnect
    //    elsewhere); the API keeps serving for SHUTDOWN_DELAY so load balancers can notice.
    runtime.beginShutdown();
    logger.info({ signal, delayMs: config.shutdownDelayMs }, "shutting down: readiness is 503; draining");
    if (exitCode === 0 && config.shutdownDelayMs > 0) await new Promise((done) => setTimeout(done, config.shutdownDelayMs));
    // 2. Together, within one SHUTDOWN_TIMEOUT: no new connections, requests in flight finish
    //    (idle keep-alive connections close now, anything still open at the deadline is cut); the
    //    workers (paused since step 1) let active jobs finish, then release them (they run again
    //    on another worker). 3. Connections close.
    logger.info("no new work; letting requests in flight and active jobs finish");
    const http = new Promise<void>((done) => {
      if (!server) return done();
      server.close(() => done());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), config.shutdownTimeout).unref();
    });
    await Promise.all([http, runtime.stopWorkers()]);
    await runtime.close();
    await managedRedis?.stop();
    logger.info("stopped");
    process.exit(exitCode);
  };
  const shutdownOrExit = (signal: string, exitCode = 0) =>
    void shutdown(signal, exitCode).catch((error: unknown) => {
      logger.error({ err: error }, "shutdown failed");
      process.exit(1);
    });
  process.on("SIGTERM", () => shutdownOrExit("SIGTERM"));
  process.on("SIGINT", () => shutdownOrExit("SIGINT"));

  // The port is taken (or not ours to take): say which variable to change, then stop what started.
  // Any later error of the server itself (none is expected) stops the process the same way.
  server?.once("error", (error: NodeJS.ErrnoException) => {
    const variable = runtime.app ? "PORT" : "METRICS_PORT";
    const where = `${config.host}:${port}`;
    const message =
      error.syscall !== "listen"
        ? `the HTTP server on ${where} failed: ${error.message}`
        : error.code === "EADDRINUSE"
          ? `cannot listen on ${where}: the address is in use; set ${variable} to a free port`
          : `cannot listen on ${where} (${variable}): ${error.message}`;
    logger.fatal({ code: error.code, host: config.host, port }, message);
    shutdownOrExit("server error", 1);
  });
}

export function runServiceOrExit(mode: string): void {
  runService(mode).catch((error: unknown) => {
    console.error("ricochet failed to start:", error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
