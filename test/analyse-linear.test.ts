import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyse, type TextStats } from "../src/core/actions/analyse.js";
import { createActionThreadPool, type ActionThreadPool } from "../src/core/actions/thread-pool.js";
import type { ActionHelpers } from "../src/core/actions/types.js";
import { systemClock } from "../src/shared/clock.js";

/**
 * analyse must take time linear in its input: 1 MB (the most the schema allows) of any shape
 * in well under a second. Before the fix, 160 KB of prose took ~29 s and 1 MB of one long
 * sentence ~20 minutes (Intl.Segmenter on Node 20 costs O(text length) per segment).
 *
 * Each run happens in a pool thread with a 10 s time limit, so that a regression fails the
 * test after 10 s (ACTION_TIMEOUT) instead of blocking the test process for a quarter of an
 * hour (a synchronous loop cannot be interrupted by vitest's test timeout).
 *
 * The expected counts come from segmenting a few repetitions of each text's unit the plain
 * way (whole text, one Intl.Segmenter pass per granularity, as analyse did before), which is
 * quick on short texts: the counts of `unit.repeat(k)` are linear in k.
 */
const MB = 1_000_000;
const inlineHelpers: ActionHelpers = {
  logger: pino({ level: "silent" }),
  signal: new AbortController().signal,
  clock: systemClock,
  progress: async () => {},
  http: { send: () => Promise.reject(new Error("no calls")), timeoutMs: 1_000, maxBodyBytes: 1_024 },
};
const TIME_LIMIT_MS = 10_000;

function reference(text: string, locale = "en"): TextStats {
  const stats: TextStats = { words: 0, characters: 0, charactersWithoutSpaces: 0, segments: 0, repeatedSegments: 0 };
  const seen = new Set<string>();
  for (const word of new Intl.Segmenter(locale, { granularity: "word" }).segment(text)) if (word.isWordLike) stats.words++;
  for (const { segment } of new Intl.Segmenter(locale, { granularity: "grapheme" }).segment(text)) {
    stats.characters++;
    if (!/^\s+$/u.test(segment)) stats.charactersWithoutSpaces++;
  }
  for (const { segment } of new Intl.Segmenter(locale, { granularity: "sentence" }).segment(text)) {
    const key = segment.trim().replace(/\s+/gu, " ").toLocaleLowerCase(locale);
    if (!key) continue;
    stats.segments++;
    if (seen.has(key)) stats.repeatedSegments++;
    else seen.add(key);
  }
  return stats;
}

const keys = ["words", "characters", "charactersWithoutSpaces", "segments", "repeatedSegments"] as const;

/** The counts of `unit.repeat(times)`, extrapolated from 2, 3 and 4 repetitions (checked to be linear). */
function expectedForRepeats(unit: string, times: number): TextStats {
  const [two, three, four] = [2, 3, 4].map((k) => reference(unit.repeat(k)));
  const expected = {} as TextStats;
  for (const key of keys) {
    const step = three![key] - two![key];
    expect(four![key] - three![key], `the counts of "${unit}" repeated grow linearly`).toBe(step);
    expected[key] = two![key] + (times - 2) * step;
  }
  return expected;
}

const repeatedShapes: Record<string, string> = {
  "prose": "The quick brown fox jumps over the lazy dog. It barked! Did it? Yes, it did.\n",
  "prose without line breaks": "The quick brown fox jumps over the lazy dog. It barked! Did it? \"Yes,\" it did. ",
  "one huge sentence, no punctuation": "word and more words without any punctuation ",
  "only spaces": " ",
  "only one repeated character": "a",
  "only newlines": "\n",
  "only CR LF": "\r\n",
  "short lines": "a\n",
  "emoji and combining marks": "👍🏽 e\u0301 👨‍👩‍👧 🇩🇪🇫🇷 n\u0303o\u0308 ",
  "emoji without spaces": "👍🏽👨‍👩‍👧🇩🇪",
  "CJK": "日本語のテキストです。東京都に住んでいます、はい！",
  "Korean": "한국어 텍스트입니다. ",
};

describe("analyse on 1 MB texts", () => {
  let pool: ActionThreadPool;
  beforeAll(() => {
    pool = createActionThreadPool({ maxThreads: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  const analyseInThread = async (text: string) => {
    const input = analyse.input.parse({ texts: [text] });
    return (await pool.run("analyse", input, { timeLimitMs: TIME_LIMIT_MS })) as { texts: TextStats[]; totals: TextStats };
  };

  it.concurrent.each(Object.entries(repeatedShapes))("%s: counts right within the time limit", async (_shape, unit) => {
    const times = Math.floor(MB / unit.length);
    const text = unit.repeat(times);
    expect(text.length).toBeGreaterThan(MB - unit.length);
    const result = await analyseInThread(text);
    const expected = expectedForRepeats(unit, times);
    expect(result.texts[0]).toEqual(expected);
    expect(result.totals).toEqual(expected);
  });

  it("one grapheme of a million code points", async () => {
    const result = await analyseInThread("e" + "\u0301".repeat(MB - 1));
    expect(result.texts[0]).toEqual({ words: 1, characters: 1, charactersWithoutSpaces: 1, segments: 1, repeatedSegments: 0 });
  });

  it("one sentence of 1 MB, inline on the event loop, in well under 10 s", async () => {
    const text = repeatedShapes["one huge sentence, no punctuation"]!.repeat(Math.floor(MB / 44));
    // Guard: if analyse is quadratic again, fail here (in 10 s, in a thread) rather than block for minutes below.
    await analyseInThread(text);
    const started = performance.now();
    const result = await analyse.run(analyse.input.parse({ texts: [text] }), inlineHelpers);
    expect(performance.now() - started).toBeLessThan(TIME_LIMIT_MS);
    expect(result.texts[0]).toMatchObject({ words: 7 * Math.floor(MB / 44), segments: 1 });
  });
});
