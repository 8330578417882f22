/**
 * Ricochet inside another program: the same runtime `ricochet start` builds, with actions given
 * in code. For teams that mount the API in their own server, or test their actions against the
 * real loop (real Redis, real database, real callbacks).
 *
 *   const ricochet = createRicochet({ actions: [greet], config: { DATABASE_URL, REDIS_URL } });
 *   await ricochet.start({ port: 3000 });       // or mount ricochet.app yourself
 *   …
 *   await ricochet.stop();
 */
import type { Server } from "node:http";
import type { Logger } from "pino";
import type { App } from "./api/app.js";
import type { Config } from "./config.js";
import type { ActionDefinition } from "./core/actions/types.js";
import type { Roles, Runtime } from "./runtime.js";

export type RicochetOptions = {
  /** Actions defined in code (loop actions; a thread action must come from `actionModules`). */
  actions?: readonly ActionDefinition[];
  /** Modules of actions, as in ACTIONS (paths from the working directory, or packages). */
  actionModules?: readonly string[];
  /** Settings by their environment names (README: Configuration), over `process.env`. */
  config?: Record<string, string | undefined>;
  /** API, worker, or both (the default, like `ricochet start`). */
  roles?: Roles;
  logger?: Logger;
};

export type Ricochet = {
  /** Connects, migrates, starts the workers; with `port`, also serves the API over HTTP. */
  start(listen?: { port: number; hostname?: string }): Promise<void>;
  /** The Hono app (after start, with the API role): mount it, or call `app.request(…)`. */
  readonly app: App;
  /** The validated configuration (after start). */
  readonly config: Config;
  /** Lets active jobs finish (up to SHUTDOWN_TIMEOUT), closes the server and every connection. */
  stop(): Promise<void>;
};

export function createRicochet(options: RicochetOptions = {}): Ricochet {
  let runtime: Runtime | undefined;
  let config: Config | undefined;
  let server: Server | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`Ricochet has no ${what} yet: call start() first${what === "app" ? " (with the api role)" : ""}`);
    return value;
  };
  return {
    async start(listen) {
      if (runtime) throw new Error("Ricochet is already started");
      // Imported here, not at the top: an action module imports this package's entry (for
      // defineAction), also in every action thread, and must not pull in the whole service.
      const [{ loadConfig }, { withLocalSecrets }, { createLogger }, { createRuntime }, { serveApp }] = await Promise.all([
        import("./config.js"),
        import("./infra/local-secrets.js"),
        import("./logger.js"),
        import("./runtime.js"),
        import("./api/http-server.js"),
      ]);
      const env = { ...process.env, ...options.config };
      if (options.actionModules?.length) env.ACTIONS = [env.ACTIONS, ...options.actionModules].filter(Boolean).join(",");
      config = withLocalSecrets(loadConfig(env));
      const logger = options.logger ?? createLogger(config.logLevel);
      runtime = await createRuntime(config, {
        logger,
        roles: options.roles ?? { api: true, worker: true },
        actions: (options.actions ?? []).map((action) => ({ action, source: "createRicochet" })),
      });
      if (listen && runtime.app) {
        const app = runtime.app;
        await new Promise<void>((resolve) => {
          server = serveApp(app.fetch, { port: listen.port, hostname: listen.hostname ?? "127.0.0.1" }, () => resolve());
        });
      }
    },
    get app() {
      return started(runtime?.app, "app");
    },
    get config() {
      return started(config, "config");
    },
    async stop() {
      if (!runtime) return;
      // As on SIGTERM (src/cli/service.ts): long-polls answer and event streams end first, so the
      // server can close; what is still open after SHUTDOWN_TIMEOUT is cut.
      runtime.beginShutdown();
      const open = server;
      const http = new Promise<void>((resolve) => {
        if (!open) return resolve();
        open.close(() => resolve());
        open.closeIdleConnections();
        setTimeout(() => open.closeAllConnections(), config!.shutdownTimeout).unref();
      });
      await Promise.all([http, runtime.stopWorkers()]);
      server = undefined;
      await runtime.close();
      runtime = undefined;
    },
  };
}
