import { monitorEventLoopDelay } from "node:perf_hooks";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyse } from "../src/core/actions/analyse.js";
import { BUILT_IN_THREAD_ACTIONS, createActionThreadPool, type ActionThreadPool } from "../src/core/actions/thread-pool.js";
import { ActionError } from "../src/core/actions/types.js";
import { systemClock } from "../src/shared/clock.js";

const fixture = new URL("./thread-pool.fixture.ts", import.meta.url).href;

const inlineHelpers = () => ({
  logger: pino({ level: "silent" }),
  signal: new AbortController().signal,
  clock: systemClock,
  progress: async () => {},
  http: { send: () => Promise.reject(new Error("no calls")), timeoutMs: 1_000, maxBodyBytes: 1_024 },
});

/** Resolves when the action reports its first progress, i.e. when it runs in a thread. */
function onStart() {
  let started!: () => void;
  const promise = new Promise<void>((resolve) => (started = resolve));
  return { promise, onProgress: () => started() };
}

describe("action thread pool", () => {
  let pool: ActionThreadPool;
  beforeAll(() => {
    pool = createActionThreadPool({ maxThreads: 2, modules: [BUILT_IN_THREAD_ACTIONS, fixture] });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it("runs analyse in a thread with the same result as inline", async () => {
    const input = analyse.input.parse({
      texts: ["Hello world. Hello world.", "Goodbye.", "Grüße aus Köln! 👍🏽 e\u0301\n日本語です。はい。", "Hello world."],
    });
    const progress: number[] = [];
    const threaded = await pool.run("analyse", input, { onProgress: (percent) => progress.push(percent) });
    const inline = await analyse.run(input, inlineHelpers());
    expect(threaded).toEqual(inline);
    expect((threaded as typeof inline).texts[0]).toEqual({ words: 4, characters: 25, charactersWithoutSpaces: 22, segments: 2, repeatedSegments: 1 });
    expect(progress).toEqual([25, 50, 75, 100]);
  });

  it("gives thread actions silent, self-contained helpers and forwards their progress", async () => {
    const progress: number[] = [];
    const before = Date.now();
    const result = (await pool.run("test.report", {}, { onProgress: (percent) => progress.push(percent) })) as {
      aborted: boolean;
      now: number;
      sendFails: boolean;
    };
    expect(result.aborted).toBe(false);
    expect(result.sendFails).toBe(true);
    expect(result.now).toBeGreaterThanOrEqual(before - 1_000);
    expect(progress).toEqual([50, 100]);
  });

  it("keeps the event loop free while an action computes for seconds", async () => {
    await pool.run("test.spin", { ms: 0 }); // a thread is up
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const interval = setInterval(() => ticks++, 20);
    delay.enable();
    try {
      const result = (await pool.run("test.spin", { ms: 2_000 })) as { spins: number };
      expect(result.spins).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the histogram records a late timer when it runs
    } finally {
      delay.disable();
      clearInterval(interval);
    }
    // Inline, this task would hold the loop for 2 s: max delay ~2000 ms and about one tick.
    expect(delay.max / 1e6).toBeLessThan(200);
    expect(ticks).toBeGreaterThan(50);
  });

  it("aborts a task that exceeds its time limit, and keeps working", async () => {
    const started = Date.now();
    const running = pool.run("test.spin", { ms: 60_000 }, { timeLimitMs: 300 });
    await expect(running).rejects.toBeInstanceOf(ActionError);
    await expect(running).rejects.toMatchObject({
      code: "ACTION_TIMEOUT",
      message: 'Action "test.spin" exceeded its time limit of 300 ms',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await pool.run("analyse", analyse.input.parse({ texts: ["Still here."] }))).toMatchObject({ totals: { words: 2 } });
  });

  it("rejects with the signal's reason when cancelled, running or waiting for a thread", async () => {
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const starts = [onStart(), onStart()];
    const busy = starts.map((start, index) =>
      pool.run("test.spin", { ms: 60_000 }, { signal: controllers[index]!.signal, onProgress: start.onProgress }),
    );
    await Promise.all(starts.map((start) => start.promise)); // both threads are busy
    const waiting = pool.run("test.spin", { ms: 60_000 }, { signal: controllers[2]!.signal });
    const shutdown = new Error("worker shutting down");
    controllers[2]!.abort(shutdown);
    await expect(waiting).rejects.toBe(shutdown);
    const cancelled = new Error("request cancelled");
    controllers[0]!.abort(cancelled);
    controllers[1]!.abort(shutdown);
    await expect(busy[0]).rejects.toBe(cancelled);
    await expect(busy[1]).rejects.toBe(shutdown);
    // Already aborted: rejects at once.
    await expect(pool.run("test.spin", { ms: 0 }, { signal: AbortSignal.abort(cancelled) })).rejects.toBe(cancelled);
    expect(await pool.run("test.spin", { ms: 1 })).toMatchObject({ spins: expect.any(Number) });
  });

  it("passes an action's ActionError through, and refuses actions that are not thread actions", async () => {
    const failing = pool.run("test.fail", {});
    await expect(failing).rejects.toBeInstanceOf(ActionError);
    await expect(failing).rejects.toMatchObject({ code: "TEST_FAILURE", message: "failed on purpose", details: [{ field: "x" }] });
    await expect(pool.run("test.loop-only", {})).rejects.toThrow('No thread action "test.loop-only"');
    await expect(pool.run("no-such-action", {})).rejects.toThrow('No thread action "no-such-action"');
  });
});

describe("a thread that runs out of memory", () => {
  let pool: ActionThreadPool;
  beforeAll(() => {
    pool = createActionThreadPool({ maxThreads: 1, maxOldGenerationSizeMb: 32, modules: [BUILT_IN_THREAD_ACTIONS, fixture] });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it("fails its task with ACTION_OUT_OF_MEMORY, and the pool keeps working", async () => {
    const hogging = pool.run("test.hog", {}, { timeLimitMs: 20_000 });
    await expect(hogging).rejects.toBeInstanceOf(ActionError);
    await expect(hogging).rejects.toMatchObject({ code: "ACTION_OUT_OF_MEMORY" });
    const result = await pool.run("analyse", analyse.input.parse({ texts: ["Hello world. Hello world.", "Goodbye."] }));
    expect(result).toMatchObject({ totals: { words: 5, characters: 33, charactersWithoutSpaces: 30, segments: 3, repeatedSegments: 1 } });
  });
});

describe("a pool whose threads cannot load their modules", () => {
  it("fails the task instead of waiting forever", async () => {
    const pool = createActionThreadPool({ maxThreads: 1, modules: [new URL("./no-such-module.ts", import.meta.url)] });
    try {
      await expect(pool.run("analyse", { texts: ["x"], locale: "en" })).rejects.toThrow(/no-such-module/);
    } finally {
      await pool.close();
    }
  });
});
