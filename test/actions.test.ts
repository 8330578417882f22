import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { analyse } from "../src/core/actions/analyse.js";
import { echo } from "../src/core/actions/echo.js";
import { ActionError, type ActionHelpers } from "../src/core/actions/types.js";
import { systemClock } from "../src/shared/clock.js";

const helpers = (signal = new AbortController().signal, progress: number[] = []): ActionHelpers => ({
  logger: pino({ level: "silent" }),
  signal,
  clock: systemClock,
  progress: async (n) => {
    progress.push(n);
  },
  http: {
    send: () => Promise.reject(new Error("these actions make no outbound calls")),
    timeoutMs: 1_000,
    maxBodyBytes: 1_024,
  },
});

describe("analyse", () => {
  it("counts words, characters, segments and repetitions per text and in total", async () => {
    const input = analyse.input.parse({
      texts: ["The cat sat. The  cat sat.\nA dog ran!", "Grüße aus Köln. The cat sat.", "   "],
    });
    const progress: number[] = [];
    const result = await analyse.run(input, helpers(undefined, progress));
    expect(result.texts[0]).toEqual({ words: 9, characters: 37, charactersWithoutSpaces: 28, segments: 3, repeatedSegments: 1 });
    expect(result.texts[1]).toEqual({ words: 6, characters: 28, charactersWithoutSpaces: 23, segments: 2, repeatedSegments: 0 });
    expect(result.texts[2]).toEqual({ words: 0, characters: 3, charactersWithoutSpaces: 0, segments: 0, repeatedSegments: 0 });
    expect(result.totals).toEqual({ words: 15, characters: 68, charactersWithoutSpaces: 51, segments: 5, repeatedSegments: 2 });
    expect(progress).toEqual([33, 67, 100]);
  });

  it("counts user-perceived characters, not UTF-16 units", async () => {
    const result = await analyse.run(analyse.input.parse({ texts: ["👍🏽 e\u0301"] }), helpers());
    expect(result.texts[0]).toMatchObject({ characters: 3, charactersWithoutSpaces: 2 });
  });

  it("rejects empty lists and non-strings", () => {
    expect(analyse.input.safeParse({ texts: [] }).success).toBe(false);
    expect(analyse.input.safeParse({ texts: [1] }).success).toBe(false);
    expect(analyse.input.safeParse({}).success).toBe(false);
  });
});

describe("echo", () => {
  it("returns its data, and fails on request with the given error", async () => {
    expect(await echo.run(echo.input.parse({ data: [1, 2] }), helpers())).toEqual({ data: [1, 2] });
    const failure = echo.run(echo.input.parse({ fail: { code: "NOPE", message: "no", details: [1] } }), helpers());
    await expect(failure).rejects.toBeInstanceOf(ActionError);
    await expect(failure).rejects.toMatchObject({ code: "NOPE", message: "no", details: [1] });
  });

  it("stops waiting as soon as its signal aborts", async () => {
    const controller = new AbortController();
    const running = echo.run(echo.input.parse({ delayMs: 3_600_000 }), helpers(controller.signal));
    controller.abort(new Error("cancelled"));
    await expect(running).rejects.toThrow("cancelled");
  });
});
