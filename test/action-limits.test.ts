import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyse } from "../src/core/actions/analyse.js";
import { startTestRuntime, submit, waitForStatus, type TestRuntime } from "./helpers/runtime.js";

/**
 * CPU time (ms) used so far by this process's main thread, which runs the test's event loop (the
 * forks pool), from Linux's per-thread counters: utime and stime, in clock ticks of 10 ms.
 */
function eventLoopThreadCpuMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ").at(-1)!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe("no action can block the service", { timeout: 60_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ env: { BODY_LIMIT: "4mb", ACTION_TIME_LIMIT: "300ms", WORKER_CONCURRENCY: "4" } });
  });
  afterAll(() => rt.stop());

  it("large analyse requests run off the event loop: /healthz keeps answering at once", async () => {
    // One ~1 MB sentence each: minutes of work for the old algorithm on the event loop; now a
    // worker thread's.
    const text = "a b c ".repeat(166_000);
    // What one of them costs when run on an event loop (this one, once): the stall the service must not show.
    const startedInline = performance.now();
    const cpuBeforeInline = eventLoopThreadCpuMs();
    await analyse.run({ texts: [text], locale: "en" }, { signal: new AbortController().signal, progress: async () => {} } as never);
    const inlineMs = performance.now() - startedInline;
    const inlineCpuMs = eventLoopThreadCpuMs() - cpuBeforeInline;
    // Watched from before the submits: a worker may start the first one before the last is in.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const loopCpuBefore = eventLoopThreadCpuMs();
    const ids = await Promise.all([1, 2, 3].map(() => submit(rt, { action: "analyse", input: { texts: [text] } }).then((r) => r.id)));
    let answered = 0;
    const done = Promise.all(ids.map((id) => waitForStatus(rt, id, "COMPLETED", 30_000)));
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      expect((await rt.rawRequest("/healthz")).status).toBe(200);
      answered++;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    delay.disable();
    const loopCpuMs = eventLoopThreadCpuMs() - loopCpuBefore;
    await done;
    const results = await Promise.all(ids.map(async (id) => (await (await rt.request(`/api/v1/async/${id}/result`)).json()) as { analysis: { totals: { words: number } } }));
    expect(results.map((r) => r.analysis.totals.words)).toEqual([498_000, 498_000, 498_000]);
    expect(answered).toBeGreaterThan(0);
    // The analyses never ran on the event loop's thread: on it they would have cost three times
    // one analysis's CPU; it used less than two while answering /healthz and the polls. (Its own
    // CPU time, which waiting for a core while the rest of the suite runs does not inflate.)
    expect(loopCpuMs).toBeLessThan(2 * inlineCpuMs);
    // And it was never held for one: its longest stall (wall clock, so it also counts the moments
    // other processes had the cores) stays below what one analysis takes on it.
    expect(delay.max / 1e6).toBeLessThan(Math.max(60, inlineMs));
  });

  it("an action on the event loop that outlives its time limit ends FAILED with ACTION_TIMEOUT", async () => {
    const { id } = await submit(rt, { action: "echo", input: { delayMs: 10_000 } });
    const failed = await waitForStatus(rt, id, "FAILED");
    expect(failed.asyncResponse).toMatchObject({ errorCode: "ACTION_TIMEOUT", errorDesc: 'Action "echo" exceeded its time limit of 300 ms' });
    const usage = (await (await rt.request("/api/v1/async/limits")).json()) as { concurrentRequests: { count: number } };
    expect(usage.concurrentRequests.count).toBe(0); // its slot is free again
  });
});
