/**
 * Thread actions for test/thread-pool.test.ts only: a pool loads this module when a test
 * passes it in `modules`. Every export made with `defineAction` and `runIn: "thread"` is
 * offered by the pool's threads.
 */
import { z } from "zod";
import { ActionError, defineAction } from "../src/core/actions/types.js";

/** Keeps its thread's CPU busy for `ms`; reports progress 0 when it starts spinning. */
export const spin = defineAction({
  name: "test.spin",
  description: "Busy-waits for the given time",
  input: z.object({ ms: z.number().int().min(0) }),
  resultKey: "spin",
  runIn: "thread",
  async run({ ms }, { progress }) {
    await progress(0);
    const until = Date.now() + ms;
    let spins = 0;
    while (Date.now() < until) spins++;
    return { spins };
  },
});

/** Allocates until its thread runs out of heap. */
export const hog = defineAction({
  name: "test.hog",
  description: "Allocates memory without bound",
  input: z.object({}),
  resultKey: "hog",
  runIn: "thread",
  async run(): Promise<never> {
    const hoard: number[][] = [];
    for (;;) hoard.push(new Array(100_000).fill(hoard.length));
  },
});

/** Fails with an ActionError, as actions do. */
export const fail = defineAction({
  name: "test.fail",
  description: "Fails on purpose",
  input: z.object({}),
  resultKey: "fail",
  runIn: "thread",
  async run(): Promise<never> {
    throw new ActionError("TEST_FAILURE", "failed on purpose", [{ field: "x" }]);
  },
});

/** Reports progress, and what it was given. */
export const report = defineAction({
  name: "test.report",
  description: "Reports progress and describes its helpers",
  input: z.object({}),
  resultKey: "report",
  runIn: "thread",
  async run(_input, { progress, signal, clock, logger, http }) {
    await progress(50);
    await progress(100);
    logger.child({ in: "thread" }).info("not written anywhere");
    let sendFails = false;
    try {
      await http.send({} as never);
    } catch {
      sendFails = true;
    }
    return { aborted: signal.aborted, now: clock.now().getTime(), sendFails };
  },
});

/** Not a thread action: a pool does not offer it. */
export const loopOnly = defineAction({
  name: "test.loop-only",
  description: "Runs on the event loop only",
  input: z.object({}),
  resultKey: "loopOnly",
  async run() {
    return {};
  },
});
