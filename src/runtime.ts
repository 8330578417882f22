import type { Logger } from "pino";
import { createApp, type App } from "./api/app.js";
import type { ApiServices } from "./api/env.js";
import type { Config } from "./config.js";
import { openDatabase, type Database } from "./db/client.js";
import { createSecretBox } from "./auth/secret-box.js";
import { callbacksRepository } from "./db/callbacks.js";
import { createMetrics } from "./infra/metrics.js";
import { checkOutboundUrl, createAddressPolicy } from "./infra/outbound/address-policy.js";
import { createOutboundClient } from "./infra/outbound/client.js";
import { clientsRepository } from "./db/clients.js";
import { requestsRepository } from "./db/requests.js";
import { tenantsRepository } from "./db/tenants.js";
import { tokensRepository } from "./db/tokens.js";
import { adminService } from "./services/admin.js";
import { queueControlService } from "./services/queue-control.js";
import { oauthService } from "./services/oauth.js";
import { createQueues } from "./infra/queues.js";
import { checkRedisTarget, connectRedis, describeRedisTarget, RedisConfigError, createRedis, pingWithin, warnAboutRedisSettings } from "./infra/redis.js";
import { createPubSub, type PubSub } from "./infra/pubsub.js";
import { asyncRequestsService } from "./services/async-requests.js";
import { systemClock, type Clock } from "./shared/clock.js";
import { catalogFingerprint, createActionCatalog, type SourcedAction } from "./core/actions/catalog.js";
import { createCatalogRegistry } from "./infra/catalog-registry.js";
import { loadActionModules } from "./core/actions/load.js";
import { BUILT_IN_THREAD_ACTIONS, createActionThreadPool } from "./core/actions/thread-pool.js";
import { createCallbackSchedule } from "./core/callback-schedule.js";
import { createLifecycle } from "./core/lifecycle.js";
import { createSigningSecretCache } from "./auth/signing-secrets.js";
import { createCredentialThrottle } from "./auth/credential-throttle.js";
import { lifecycleStatements } from "./db/lifecycle.js";
import { startWorkers, type Workers } from "./worker/index.js";
import { createCallbackDelivery, type CallbackDelivery } from "./worker/deliver-callback.js";
import { createDeliverySlots } from "./worker/delivery-slots.js";
import { createAttemptLeases } from "./worker/attempt-leases.js";
import { createRetention, type Retention } from "./worker/retention.js";
import { retentionStatements } from "./db/retention.js";
import { VERSION } from "./version.js";

export type Roles = { api: boolean; worker: boolean };

export type RuntimeOptions = {
  logger: Logger;
  clock?: Clock;
  roles: Roles;
  /** Tests hand in an already-migrated database; otherwise one is opened from config. */
  database?: Database;
  /** Actions given in code (createRicochet), beside those of config.actionModules. */
  actions?: readonly SourcedAction[];
};

export type Runtime = {
  app: App | undefined;
  workers: Workers | undefined;
  /** Callback delivery, in a process with the worker role. */
  delivery: CallbackDelivery | undefined;
  database: Database;
  services: ApiServices;
  pubsub: PubSub;
  /** The retention purge, in a process with the worker role. */
  retention: Retention | undefined;
  /** Readiness turns 503 ("shutting down"); long-polls answer and event streams end. Nothing else stops yet. */
  beginShutdown(): void;
  /** Workers stop: active jobs finish for up to SHUTDOWN_TIMEOUT, then are released (close() does it too). */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
};

/**
 * The composition root: every connection, queue and service is built here, once, and handed
 * to the factories that need it. `main.ts` and the tests both come through here.
 */
export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const { logger, roles } = options;
  const clock = options.clock ?? systemClock;
  if (!config.secretsKey) throw new Error("SECRETS_KEY is not set (see README: Configuration)");
  // The catalog first: a bad action module stops start-up before any connection is opened.
  const userActions = [...(options.actions ?? []), ...(await loadActionModules(config.actionModules))];
  const catalog = createActionCatalog({ builtins: config.builtinActions, httpUpstreams: config.httpActionUpstreams, actions: userActions });
  const secretBox = createSecretBox(config.secretsKey);
  const database =
    options.database ?? (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
      onConnectionError: (error) => logger.warn({ err: error }, "a PostgreSQL connection was lost; it is replaced on next use"),
    }));
  if (!options.database) await database.migrate();

  const redis = createRedis(config.redis, "client");
  const subscriber = createRedis(config.redis, "subscriber");
  const workerRedis = roles.worker ? createRedis(config.redis, "worker") : undefined;
  const closeRedis = () => Promise.allSettled([redis, subscriber, workerRedis].map((conn) => conn?.quit()));
  try {
    await Promise.all([connectRedis(redis), connectRedis(subscriber), workerRedis && connectRedis(workerRedis)]);
    await checkRedisTarget(redis, config.redis);
  } catch (error) {
    redis.disconnect();
    subscriber.disconnect();
    workerRedis?.disconnect();
    if (!options.database) await database.close();
    if (error instanceof RedisConfigError) throw error;
    throw new Error(`Redis (${describeRedisTarget(config.redis)}): ${(error as Error).message}`, { cause: error });
  }

  if (roles.worker) await warnAboutRedisSettings(redis, (message, details) => logger.warn(details, message));
  // Status changes wake long-polls and event streams, which only an API serves.
  const events = createPubSub({ publisher: redis, subscriber, prefix: config.queuePrefix, logger, statusEvents: roles.api });
  await events.start();
  const schedule = createCallbackSchedule(config.callbackRetryDelays);
  const queues = createQueues(redis, config.queuePrefix, schedule);
  const repo = requestsRepository(database.db);
  const tenants = tenantsRepository(database.db);
  const clients = clientsRepository(database.db);
  const tokens = tokensRepository(database.db);
  const callbacks = callbacksRepository(database.db);
  const metrics = createMetrics({ queues, logger });
  const catalogRegistry = createCatalogRegistry({
    redis,
    prefix: config.queuePrefix,
    fingerprint: catalogFingerprint(catalog),
    actions: [...catalog.keys()],
    roles: Object.entries(roles).filter(([, on]) => on).map(([role]) => role),
    logger,
    onMismatches: (count) => metrics.catalogMismatches.set(count),
  });
  await catalogRegistry.start();
  const statements = lifecycleStatements(database.sql);
  const userAgent = `Ricochet/${VERSION}`;
  const callbackPolicy = createAddressPolicy(config.outboundAllow);
  const callbackHttp = createOutboundClient({
    policy: callbackPolicy,
    dnsServers: config.outboundDnsServers,
    userAgent,
    // One connection per delivery slot an origin can earn: an attempt holding a slot never waits for a connection.
    connectionsPerOrigin: config.callbackOriginMaxConcurrency,
  });
  // The http action's upstreams are the operator's own choice, so their hosts are allowed.
  const upstreamHosts = config.httpActionUpstreams.map((base) => new URL(base).hostname);
  const actionHttp = createOutboundClient({
    policy: createAddressPolicy([...config.outboundAllow, ...upstreamHosts]),
    dnsServers: config.outboundDnsServers,
    userAgent,
  });
  const defaults = { maxConcurrent: config.defaultMaxConcurrent, maxQueued: config.defaultMaxQueued };
  const oauth = oauthService({
    clients,
    tokens,
    pubsub: events,
    clock,
    logger,
    tokenTtlMs: config.tokenTtlMs,
    tokenCacheTtlMs: config.tokenCacheTtlMs,
    throttle: createCredentialThrottle({
      redis,
      prefix: config.queuePrefix,
      perClient: config.authFailuresPerClient,
      perAddress: config.authFailuresPerAddress,
      windowSeconds: Math.ceil(config.authFailureWindowMs / 1000),
    }),
  });
  const queueControl = queueControlService({ queues, logger });
  const admin = adminService({
    tenants,
    callbacks,
    queues,
    queueControl,
    clients,
    tokens,
    oauth,
    secretBox,
    clock,
    logger,
    defaults,
    secretRotationOverlapMs: config.secretRotationOverlapMs,
    pubsub: events,
  });
  const signingSecrets = createSigningSecretCache({ load: admin.signingSecrets, ttlMs: config.signingSecretCacheTtlMs, clock });
  const stopRotationListener = events.onSecretsRotated((clientId) => signingSecrets.invalidate(clientId));
  const leases = createAttemptLeases({ redis, prefix: config.queuePrefix, lockMs: config.jobLockDuration, graceMs: config.sweeperGrace });
  // An attempt that would wait longer than this for its receiver's slot goes back to the queue
  // for as long instead (a job), so a slow receiver cannot fill a worker with its attempts.
  const originBackoffMs = Math.min(1_000, config.callbackTimeoutMs);
  const delivery = roles.worker
    ? createCallbackDelivery({
        statements,
        catalog,
        http: callbackHttp,
        signingSecrets: signingSecrets.get,
        clock,
        logger,
        metrics,
        schedule,
        timeoutMs: config.callbackTimeoutMs,
        queues,
        slots: createDeliverySlots({
          total: config.callbackConcurrency,
          perOrigin: config.callbackOriginConcurrency,
          perOriginMax: config.callbackOriginMaxConcurrency,
          slowMs: config.callbackOriginSlowMs,
          shedAfterMs: originBackoffMs,
        }),
        leases,
        // Before a receiver's first answer tells how long it takes, at most this many of its
        // attempts wait here (the callbacks worker fetches 2 jobs per slot).
        originBacklog: config.callbackConcurrency,
        originBackoffMs,
        // Finished requests' first attempts wait here for a slot (each with its row) rather than
        // take a queue hop, up to as many as there are slots.
        inlineBacklog: config.callbackConcurrency,
      })
    : undefined;
  const threads = roles.worker
    ? createActionThreadPool({
        ...(config.actionThreads > 0 ? { maxThreads: config.actionThreads } : {}),
        maxOldGenerationSizeMb: config.actionThreadMemoryMb,
        // Threads import the built-in thread actions and each user module that has one.
        modules: [...new Set([BUILT_IN_THREAD_ACTIONS, ...userActions.filter(({ action }) => action.runIn === "thread").map(({ source }) => source)])],
        logger,
      })
    : undefined;
  const lifecycle = createLifecycle({
    deliverNow: delivery?.deliverNow,
    statements,
    queues,
    events,
    metrics,
    clock,
    logger,
    defaults,
    batch: { maxRows: config.submitBatchMax, maxConcurrentFlushes: config.submitBatchFlushes },
  });

  // SIGTERM: readiness turns 503 at once, long-polls and event streams end (see beginShutdown).
  const shutdown = new AbortController();
  const services: ApiServices = {
    shuttingDown: shutdown.signal,
    asyncRequests: asyncRequestsService({
      repo,
      callbacks,
      checkCallbackUrl: (url) => checkOutboundUrl(url, callbackPolicy),
      tenants,
      defaults,
      lifecycle,
      queues,
      events,
      catalog,
      clock,
      logger,
    }),
    metrics,
    subscribeStatus: (id, listener) => events.onStatus(id, listener),
    oauth,
    admin,
    queueControl,
    adminToken: config.adminToken,
    metricsToken: config.metricsToken,
    catalog,
    logger,
    async readiness() {
      const check = (probe: Promise<unknown>) =>
        probe.then(
          () => "ok",
          (error: Error) => `unavailable: ${error.message}`,
        );
      const [redisCheck, dbCheck] = await Promise.all([
        check(pingWithin(redis, 1_000)),
        check(Promise.race([database.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 2000 ms")), 2_000).unref())])),
      ]);
      return { redis: redisCheck, database: dbCheck, ...(shutdown.signal.aborted ? { process: "shutting down" } : {}) };
    },
  };

  const app = roles.api ? createApp(services, { bodyLimit: config.bodyLimit, version: VERSION }) : undefined;
  const workers =
    roles.worker && workerRedis && delivery && threads
      ? await startWorkers({
          threads,
          defaultTimeLimitMs: config.actionTimeLimitMs,
          repo,
          callbacks,
          lifecycle,
          statements,
          delivery,
          actionHttp: { send: actionHttp.send, timeoutMs: config.httpActionTimeoutMs, maxBodyBytes: config.httpActionMaxBody },
          schedule,
          leases,
          callbackConcurrency: config.callbackConcurrency,
          tenantSlotRetryMs: config.tenantSlotRetryMs,
          queues,
          events,
          catalog,
          clock,
          logger,
          metrics,
          redis,
          workerRedis,
          prefix: config.queuePrefix,
          concurrency: config.workerConcurrency,
          lockDurationMs: config.jobLockDuration,
          sweeperIntervalMs: config.sweeperInterval,
          sweeperGraceMs: config.sweeperGrace,
          shutdownTimeoutMs: config.shutdownTimeout,
        })
      : undefined;
  const retention = roles.worker
    ? createRetention({
        statements: retentionStatements(database.sql),
        redis,
        prefix: config.queuePrefix,
        clock,
        logger,
        retentionMs: config.retentionMs,
        intervalMs: config.retentionIntervalMs,
      })
    : undefined;
  retention?.start();

  let workersStopped: Promise<void> | undefined;
  /** Active jobs finish for up to SHUTDOWN_TIMEOUT, then are released; once, however often asked. */
  const stopWorkers = () =>
    (workersStopped ??= (async () => {
      await retention?.stop();
      await workers?.close();
    })());

  return {
    app,
    workers,
    retention,
    delivery,
    database,
    services,
    pubsub: events,
    beginShutdown() {
      shutdown.abort();
      // Workers take no new job from here on; the ones running go on (stopWorkers waits for them).
      void workers?.worker.pause(true).catch(() => undefined);
      void workers?.callbackWorker.pause(true).catch(() => undefined);
    },
    stopWorkers,
    async close() {
      shutdown.abort();
      await catalogRegistry.stop();
      await lifecycle.drain();
      await stopWorkers();
      await threads?.close();
      stopRotationListener();
      await queues.close();
      await Promise.allSettled([callbackHttp.close(), actionHttp.close()]);
      await closeRedis();
      if (!options.database) await database.close();
    },
  };
}

