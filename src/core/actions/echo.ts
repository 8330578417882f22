import { z } from "zod";
import { ActionError, defineAction, sleep } from "./types.js";

/** Input limits, declared with the schema (GET /api/v1/actions shows them). */
const ECHO_DATA_MAX = 256 * 1024;

const input = z
  .object({
    data: z
      .unknown()
      .optional()
      .refine((value) => value === undefined || JSON.stringify(value).length <= ECHO_DATA_MAX, { message: `must be at most ${ECHO_DATA_MAX} bytes of JSON` })
      .describe(`Returned as it is; at most ${ECHO_DATA_MAX} bytes of JSON`),
    delayMs: z.number().int().min(0).max(3_600_000).default(0).describe("Wait this long before answering"),
    steps: z.number().int().min(1).max(100).default(1).describe("Report progress this many times while waiting"),
    fail: z
      .object({
        code: z.string().min(1).max(100).default("ECHO_FAILED"),
        message: z.string().max(1000).default("echo was asked to fail"),
        details: z.array(z.unknown()).max(100).default([]),
      })
      .optional()
      .describe("End FAILED with this error instead of answering"),
  })
  .strict();

/** Returns its input after an optional delay; for trials, tests and benchmarks. */
export const echo = defineAction({
  name: "echo",
  description: "Returns its input after an optional delay, or fails on request.",
  input,
  resultKey: "echo",
  async run(params, { signal, progress }) {
    for (let step = 1; step <= params.steps; step++) {
      await sleep(params.delayMs / params.steps, signal);
      if (params.steps > 1) await progress(Math.round((step / params.steps) * 100));
    }
    if (params.fail) throw new ActionError(params.fail.code, params.fail.message, params.fail.details);
    return { data: params.data ?? null };
  },
});
