import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createRuntime, type Roles, type Runtime } from "../../src/runtime.js";
import type { Clock } from "../../src/shared/clock.js";
import { createTestDatabase, type DbKind, type TestDatabase } from "./db.js";
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
  /** Calls the API in process. */
  request(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
};

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
  return {
    ...runtime,
    config,
    env,
    db,
    logs,
    request: async (path, init) => {
      if (!runtime.app) throw new Error("this runtime has no API role");
      return runtime.app.request(path, init);
    },
    async stop() {
      await runtime.close();
      if (!options.db) {
        await db.drop();
        await deleteKeys(config.queuePrefix);
      }
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
