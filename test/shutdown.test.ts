/**
 * SIGTERM on a real `ricochet start` process under work: readiness turns 503 first, a long-poll
 * answers and an event stream ends, a job that can finish within SHUTDOWN_TIMEOUT finishes, one
 * that cannot is released and runs again on the next process, and the process exits 0 in time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./helpers/db.js";
import { bootstrapClient, spawnRicochet, type RicochetProcess } from "./helpers/process.js";
import { deleteKeys, freePort, REDIS_URL, uniquePrefix } from "./helpers/redis.js";
import { TEST_ADMIN_TOKEN, TEST_SECRETS_KEY } from "./helpers/runtime.js";

describe("SIGTERM", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  const prefix = uniquePrefix();
  const processes: RicochetProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase("postgres");
    env = {
      DATABASE_URL: db.url!,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      SECRETS_KEY: TEST_SECRETS_KEY,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      HOST: "127.0.0.1",
      SHUTDOWN_DELAY: "1s",
      SHUTDOWN_TIMEOUT: "3s",
      JOB_LOCK_DURATION: "2s",
      LOG_LEVEL: "info",
    };
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill("SIGKILL")));
    await db.drop();
    await deleteKeys(prefix);
  });

  it("drains in order, loses nothing, and exits 0 within its timeouts", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const first = spawnRicochet("start", { ...env, PORT: String(port) });
    processes.push(first);
    await first.waitForOutput("ricochet is listening", 60_000);
    const { auth } = await bootstrapClient(base, TEST_ADMIN_TOKEN);
    const submit = async (delayMs: number) => {
      const response = await fetch(`${base}/api/v1/async`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ action: "echo", input: { delayMs } }) });
      return ((await response.json()) as { asyncRequest: { id: string } }).asyncRequest.id;
    };
    const status = async (id: string) => (await db.sql.query<{ status: string; runs: number }>("select status, runs from async_requests where id = $1", [id]))[0]!;
    const untilRunning = async (id: string) => {
      for (let i = 0; i < 200 && (await status(id)).status !== "RUNNING"; i++) await new Promise((done) => setTimeout(done, 25));
      expect((await status(id)).status).toBe("RUNNING");
    };

    const short = await submit(1_500); // finishes within SHUTDOWN_TIMEOUT
    const long = await submit(6_000); // does not: released, then run by the next process
    await Promise.all([untilRunning(short), untilRunning(long)]);
    const longPollStarted = performance.now();
    const longPoll = fetch(`${base}/api/v1/async/${long}?wait=30`, { headers: auth }).then(async (r) => ({ status: r.status, afterMs: performance.now() - longPollStarted }));
    const stream = await fetch(`${base}/api/v1/async/${long}/events`, { headers: auth });
    const streamText = stream.text();
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    const signalledAt = performance.now();
    first.child.kill("SIGTERM");
    await first.waitForOutput("readiness is 503");
    // During SHUTDOWN_DELAY the API still answers, and says it is not ready.
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { process: "shutting down" } });
    // The long-poll answers (the request as it is now) and the event stream ends, at once.
    expect(await longPoll).toMatchObject({ status: 200 });
    expect((await longPoll).afterMs).toBeLessThan(10_000);
    expect(await streamText).toContain("event: status");

    const exit = await first.exited;
    const exitedAfterMs = performance.now() - signalledAt;
    expect(exit).toEqual({ code: 0, signal: null });
    // SHUTDOWN_DELAY (1 s) + at most SHUTDOWN_TIMEOUT (3 s) for the jobs, + start-up slack.
    expect(exitedAfterMs).toBeLessThan(1_000 + 3_000 + 3_000);
    expect(first.output()).toContain("shutdown timeout: aborting active jobs");
    expect(await status(short)).toMatchObject({ status: "COMPLETED", runs: 1 });
    expect((await status(long)).status).toBe("RUNNING");

    // The next process runs the released request again: nothing accepted is lost.
    const second = spawnRicochet("worker", env);
    processes.push(second);
    for (let i = 0; i < 600 && (await status(long)).status !== "COMPLETED"; i++) await new Promise((done) => setTimeout(done, 50));
    expect(await status(long)).toMatchObject({ status: "COMPLETED", runs: 2 });
  });
});
