import { describe, expect, it } from "vitest";
import { createBatcher } from "../src/core/batcher.js";

/** A batcher whose flushes the test finishes by hand; `flushes` holds each batch as it started. */
function controlled(options: { maxConcurrentFlushes: number; extraFlushAt?: number; maxBatch?: number }) {
  const flushes: { items: number[]; finish(): void }[] = [];
  const started: (() => void)[] = [];
  const batcher = createBatcher<number, number>({
    maxBatch: options.maxBatch ?? 100,
    maxConcurrentFlushes: options.maxConcurrentFlushes,
    ...(options.extraFlushAt === undefined ? {} : { extraFlushAt: options.extraFlushAt }),
    flush: (items) =>
      new Promise((resolve) => {
        flushes.push({ items, finish: () => resolve(items.map((item) => item * 10)) });
        started.splice(0).forEach((wake) => wake());
      }),
  });
  /** Resolves once the next flush has started (flushes start after the current turn's I/O). */
  const nextFlush = () => new Promise<void>((resolve) => started.push(resolve));
  /** Lets scheduled flushes start (they run from setImmediate). */
  const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
  return { batcher, flushes, nextFlush, settle };
}

describe("group commit batcher", () => {
  it("starts a second flush while one runs only once extraFlushAt items wait; fewer wait until no flush runs", async () => {
    const { batcher, flushes, nextFlush, settle } = controlled({ maxConcurrentFlushes: 2, extraFlushAt: 3 });
    const first = batcher.add(1);
    await nextFlush();
    expect(flushes.map((f) => f.items)).toEqual([[1]]);

    // Two wait: below the threshold, no second flush while the first runs.
    const waiting = [batcher.add(2), batcher.add(3)];
    await settle();
    expect(flushes).toHaveLength(1);

    // The third makes three: a second flush starts beside the first, with all three.
    const third = batcher.add(4);
    await settle();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3, 4]]);

    // Below the threshold again: this one waits while any flush runs, then goes alone.
    const late = batcher.add(5);
    await settle();
    expect(flushes).toHaveLength(2);
    flushes[0]!.finish();
    expect(await first).toBe(10);
    await settle();
    expect(flushes).toHaveLength(2); // [2, 3, 4] still runs, and one item is below the threshold
    flushes[1]!.finish();
    expect(await Promise.all([...waiting, third])).toEqual([20, 30, 40]);
    await settle();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3, 4], [5]]);
    flushes[2]!.finish();
    expect(await late).toBe(50);
    await batcher.drain();
  });

  it("starts a full batch beside a running flush even when maxBatch is below extraFlushAt", async () => {
    const { batcher, flushes, nextFlush, settle } = controlled({ maxConcurrentFlushes: 2, extraFlushAt: 32, maxBatch: 2 });
    const first = batcher.add(1);
    await nextFlush();
    const full = [batcher.add(2), batcher.add(3)];
    await settle();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3]]);
    flushes.forEach((f) => f.finish());
    expect(await Promise.all([first, ...full])).toEqual([10, 20, 30]);
  });

  it("without extraFlushAt, overlaps flushes at once up to maxConcurrentFlushes", async () => {
    const { batcher, flushes, nextFlush, settle } = controlled({ maxConcurrentFlushes: 2 });
    const a = batcher.add(1);
    await nextFlush();
    const b = batcher.add(2);
    await settle();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2]]);
    const c = batcher.add(3); // both slots busy: waits
    await settle();
    expect(flushes).toHaveLength(2);
    flushes[1]!.finish();
    await settle();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2], [3]]);
    flushes[0]!.finish();
    flushes[2]!.finish();
    expect(await Promise.all([a, b, c])).toEqual([10, 20, 30]);
  });
});
