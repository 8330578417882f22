import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createRuntime, type Roles, type Runtime, type RuntimeOptions } from "../../src/runtime.js";
import type { Clock } from "../../src/shared/clock.js";
import { createTestDatabase, type DbKind, type TestDatabase } from "./db.js";
import { startReceiver, type Receiver } from "./receiver.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./redis.js";

/** Log lines written by a test runtime, kept so tests can assert on them. */
export class CapturedLogs extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void) {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    done();
  }
  get text() {
    return this.lines.join("\n");
  }
}

export type TestRuntime = Runtime & {
  config: Config;
  env: Record<string, string>;
  db: TestDatabase;
  logs: CapturedLogs;
  /** Calls the API in process, as the default client (read + write) unless init sets Authorization. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** Calls the API in process with no credentials. */
  rawRequest(path: string, init?: RequestInit): Promise<Response>;
  /** The default client, of the seeded `default` tenant. */
  client: TestClient;
  /** A new client (of a new tenant unless `tenantId` names one) and a token for it. */
  createClient(options?: { tenantId?: string; scopes?: string[]; tokenScope?: string }): Promise<TestClient>;
  stop(): Promise<void>;
};

export type TestClient = {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  webhookSecret: string;
  token: string;
  /** Calls the API in process as this client. */
  request(path: string, init?: RequestInit): Promise<Response>;
};

export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString("base64");
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

export type TestRuntimeOptions = {
  roles?: Roles;
  dbKind?: DbKind;
  env?: Record<string, string>;
  clock?: Clock;
  /** Share a database (and prefix, via env) with another runtime. */
  db?: TestDatabase;
};

/** A full runtime on the real Redis and a private database, torn down by stop(). */
export async function startTestRuntime(options: TestRuntimeOptions = {}): Promise<TestRuntime> {
  const db = options.db ?? (await createTestDatabase(options.dbKind ?? "postgres"));
  const env: Record<string, string> = {
    REDIS_URL,
    QUEUE_PREFIX: uniquePrefix(),
    LOG_LEVEL: "info",
    SWEEPER_INTERVAL: "1h",
    JOB_LOCK_DURATION: "30s",
    SHUTDOWN_TIMEOUT: "5s",
    SECRETS_KEY: TEST_SECRETS_KEY,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...options.env,
  };
  const config = loadConfig(env);
  const logs = new CapturedLogs();
  const runtime = await createRuntime(config, {
    logger: createLogger(config.logLevel, logs),
    roles: options.roles ?? { api: true, worker: true },
    database: db,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const rawRequest = async (path: string, init?: RequestInit) => {
    if (!runtime.app) throw new Error("this runtime has no API role");
    return runtime.app.request(path, init);
  };
  const createClient = async (clientOptions: { tenantId?: string; scopes?: string[]; tokenScope?: string } = {}): Promise<TestClient> => {
    const { admin, oauth } = runtime.services;
    const tenantId = clientOptions.tenantId ?? `t-${randomUUID().slice(0, 8)}`;
    if (!clientOptions.tenantId) await admin.createTenant({ id: tenantId });
    const created = await admin.createClient({ tenantId, name: "test client", scopes: clientOptions.scopes });
    const issued = await oauth.issueToken({ clientId: created.clientId, clientSecret: created.clientSecret, usedBasic: false }, clientOptions.tokenScope);
    const token = issued.access_token;
    return {
      tenantId,
      clientId: created.clientId,
      clientSecret: created.clientSecret,
      webhookSecret: created.webhookSecret,
      token,
      request: (path, init = {}) => {
        const headers = new Headers(init.headers);
        if (!headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
        return rawRequest(path, { ...init, headers });
      },
    };
  };
  const client = await createClient({ tenantId: "default" });
  return {
    ...runtime,
    config,
    env,
    db,
    logs,
    client,
    createClient,
    rawRequest,
    request: client.request,
    async stop() {
      await runtime.close();
      // A runtime cleans up what it made: its database unless one was handed in, and its
      // queue prefix unless the test named one (then the runtime that made it cleans up).
      if (!options.db) await db.drop();
      // Private Redis deployments (a Cluster, Sentinel, TLS) are removed whole by their own test.
      if (!options.env?.QUEUE_PREFIX && config.redis.mode === "single" && config.redisUrl === REDIS_URL) await deleteKeys(config.queuePrefix, config.redisUrl).catch(() => {});
    },
  };
}

export const jsonBody = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

export type AsyncRequestJson = {
  id: string;
  status: string;
  progress: number | null;
  dateStarted: string | null;
  dateFinished: string | null;
  asyncResponse: null | { errorCode: string | null; errorDesc: string | null; errorDetails: unknown[]; warnings: unknown[] };
  [key: string]: unknown;
};

export async function submit(rt: { request: TestRuntime["request"] }, body: unknown): Promise<AsyncRequestJson> {
  const response = await rt.request("/api/v1/async", jsonBody(body));
  if (response.status !== 202) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { asyncRequest: AsyncRequestJson }).asyncRequest;
}

/**
 * Long-polls GET ?wait until the request reaches one of `statuses`: waits on the service's own
 * status events, never on sleeps. Fails after `deadlineMs`.
 */
export async function waitForStatus(
  rt: { request: TestRuntime["request"] },
  id: string,
  statuses: string | string[],
  deadlineMs = 20_000,
): Promise<AsyncRequestJson> {
  const wanted = Array.isArray(statuses) ? statuses : [statuses];
  const deadline = Date.now() + deadlineMs;
  let last: AsyncRequestJson | undefined;
  while (Date.now() < deadline) {
    const response = await rt.request(`/api/v1/async/${id}?wait=5`);
    last = ((await response.json()) as { asyncRequest: AsyncRequestJson }).asyncRequest;
    if (wanted.includes(last.status)) return last;
    if (["COMPLETED", "FAILED", "CANCELLED"].includes(last.status)) {
      throw new Error(`request ${id} ended ${last.status}, not ${wanted.join("|")}: ${JSON.stringify(last.asyncResponse)}`);
    }
  }
  throw new Error(`request ${id} did not reach ${wanted.join("|")}; last status ${last?.status}`);
}

/**
 * Waits until the request's callback reaches one of `statuses`, woken by the delivery's own
 * event after each recorded attempt, never by timers.
 */
export async function waitForCallback(
  rt: TestRuntime,
  client: { request: TestRuntime["request"] },
  id: string,
  statuses: string | string[],
  deadlineMs = 20_000,
): Promise<AsyncRequestJson & { callback: { status: string; attempts: number; lastStatusCode: number | null; lastError: string | null; nextAttemptAt: string | null; lastAttemptAt: string | null } }> {
  const wanted = Array.isArray(statuses) ? statuses : [statuses];
  const delivery = rt.delivery;
  if (!delivery) throw new Error("this runtime has no worker role");
  let wake: () => void = () => {};
  const onAttempt = (requestId: string) => {
    if (requestId === id) wake();
  };
  delivery.events.on("attempt", onAttempt);
  const deadline = Date.now() + deadlineMs;
  try {
    for (;;) {
      const next = new Promise<void>((resolve) => (wake = resolve));
      const response = await client.request(`/api/v1/async/${id}`);
      const { asyncRequest } = (await response.json()) as { asyncRequest: AsyncRequestJson & { callback: { status: string } | null } };
      if (asyncRequest.callback && wanted.includes(asyncRequest.callback.status)) return asyncRequest as never;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`callback of ${id} did not reach ${wanted.join("|")}: ${JSON.stringify(asyncRequest.callback)}`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([next, new Promise((resolve) => (timer = setTimeout(resolve, remaining)))]);
      clearTimeout(timer);
    }
  } finally {
    delivery.events.off("attempt", onAttempt);
  }
}

/**
 * The message a runtime with these settings fails to start with, or "started" (it is then
 * closed again). Each call has its own database and queue prefix, both removed afterwards.
 */
export async function startupError(
  env: Record<string, string>,
  options: { roles?: Roles; actions?: RuntimeOptions["actions"] } = {},
): Promise<string> {
  const db = await createTestDatabase();
  const prefix = uniquePrefix();
  try {
    const config = loadConfig({ QUEUE_PREFIX: prefix, SECRETS_KEY: TEST_SECRETS_KEY, DATABASE_URL: db.url!, ...env });
    const runtime = await createRuntime(config, {
      logger: createLogger("silent"),
      roles: options.roles ?? { api: true, worker: false },
      database: db,
      ...(options.actions ? { actions: options.actions } : {}),
    });
    await runtime.close();
    return "started";
  } catch (error) {
    return (error as Error).message;
  } finally {
    await db.drop();
    await deleteKeys(prefix);
  }
}

/** A runtime whose callbacks may reach a local receiver, retried 50 ms apart with a 2 s timeout. */
export async function startRuntimeWithReceiver(): Promise<{ rt: TestRuntime; receiver: Receiver; stop(): Promise<void> }> {
  const receiver = await startReceiver();
  const rt = await startTestRuntime({ env: { OUTBOUND_ALLOW: "127.0.0.1/32", CALLBACK_RETRY_DELAYS: "50ms", CALLBACK_TIMEOUT: "2s" } });
  return {
    rt,
    receiver,
    stop: async () => {
      await rt.stop();
      await receiver.close();
    },
  };
}
