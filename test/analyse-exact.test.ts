import { z } from "zod";
import { describe, expect, it } from "vitest";
import { analyse, ANALYSE_LIMITS, createTextAnalyser, type TextStats } from "../src/core/actions/analyse.js";
import type { ActionHelpers } from "../src/core/actions/types.js";

/**
 * analyse segments long texts chunk by chunk (see the comment in analyse.ts); these tests check
 * that this gives exactly the counts of segmenting each whole text at once, the way analyse
 * did before, which is `reference` below. A small `chunkLength` makes texts of a few KB cross
 * hundreds of chunk borders, at every kind of place.
 */
function reference(texts: string[], locale: string) {
  const word = new Intl.Segmenter(locale, { granularity: "word" });
  const grapheme = new Intl.Segmenter(locale, { granularity: "grapheme" });
  const sentence = new Intl.Segmenter(locale, { granularity: "sentence" });
  const seenAcrossTexts = new Set<string>();
  let repeatedAcrossTexts = 0;
  const stats = texts.map((text) => {
    const seenInText = new Set<string>();
    const counts: TextStats = { words: 0, characters: 0, charactersWithoutSpaces: 0, segments: 0, repeatedSegments: 0 };
    for (const segment of word.segment(text)) if (segment.isWordLike) counts.words++;
    for (const { segment } of grapheme.segment(text)) {
      counts.characters++;
      if (!/^\s+$/u.test(segment)) counts.charactersWithoutSpaces++;
    }
    for (const { segment } of sentence.segment(text)) {
      const key = segment.trim().replace(/\s+/gu, " ").toLocaleLowerCase(locale);
      if (!key) continue;
      counts.segments++;
      if (seenInText.has(key)) counts.repeatedSegments++;
      else seenInText.add(key);
      if (seenAcrossTexts.has(key)) repeatedAcrossTexts++;
      else seenAcrossTexts.add(key);
    }
    return counts;
  });
  return { stats, repeatedAcrossTexts };
}

function chunked(texts: string[], locale: string, chunkLength: number) {
  const analyser = createTextAnalyser(locale, { chunkLength });
  const stats = texts.map((text) => analyser.analyse(text));
  return { stats, repeatedAcrossTexts: analyser.repeatedAcrossTexts() };
}

const CHUNK_LENGTHS = [4, 8, 16, 64, 256];
const LOCALES = ["en", "de", "ja", "zh", "th", "el", "ko"];

// ICU loads its dictionary break engines (CJK, Thai, ...) on first use, and the very first
// segmentation with one can differ from every later one ("ーです" then "ー", "です"), whole
// text or not. Use them all once, so that the comparisons below see the settled behaviour.
for (const locale of LOCALES) {
  for (const granularity of ["word", "grapheme", "sentence"] as const) {
    for (const _ of new Intl.Segmenter(locale, { granularity }).segment("，ーですเป็นภาษาไทย日本語ລາວខ្មែរမြန်မာ한국어")) void _;
  }
}

/** Pieces that meet at chunk borders in every combination: breaks, joiners, marks, terminators, scripts. */
const PIECES = [
  "The", "cat", "sat", " ", " ", " ", "  ", ".", ". ", "! ", "? ", "!", "?", "\n", "\n\n", "\r\n", "\r", "\t",
  "Mr.", "3.14", "can't", "e.g.", "\"", "'", ")", "(", "A", "b", "Zz", "I", "x", "_", "-", "1,000", "U.S.",
  "日本語", "です", "。", "、", "！", "？", "，", "テキスト", "ー", "\u3099", "中文", "한국어", "\u1100\u1161",
  "ภาษาไทย", "เป็น", "ภาษา", "\u0e33", "क्ष", "\u0600", "\u00ad",
  "👍🏽", "👨‍👩‍👧", "🇩🇪", "🇫🇷", "\u{1f1e9}", "e\u0301", "\u0301", "\u200d", "©\u200d", "\u{fe0f}",
  "Grüße", "Köln", "ß", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u000b",
];

/** A deterministic pseudo-random generator (a failing case can be replayed from its seed). */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

function randomTexts(seed: number): string[] {
  const next = random(seed);
  return Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
    let text = "";
    const pieces = Math.floor(next() * 600);
    for (let i = 0; i < pieces; i++) text += PIECES[Math.floor(next() * PIECES.length)];
    return text;
  });
}

const helpers = (progress: number[] = []): ActionHelpers =>
  ({ signal: new AbortController().signal, progress: async (n: number) => void progress.push(n) }) as unknown as ActionHelpers;

describe("analyse counts", () => {
  it("match the README example", async () => {
    const result = await analyse.run(analyse.input.parse({ texts: ["Hello world. Hello world.", "Goodbye."] }), helpers());
    expect(result).toEqual({
      texts: [
        { words: 4, characters: 25, charactersWithoutSpaces: 22, segments: 2, repeatedSegments: 1 },
        { words: 1, characters: 8, charactersWithoutSpaces: 8, segments: 1, repeatedSegments: 0 },
      ],
      totals: { words: 5, characters: 33, charactersWithoutSpaces: 30, segments: 3, repeatedSegments: 1 },
    });
  });

  it.each([
    ["CR LF and line breaks", "ab\r\ncd\re\nf\u2028g\u2029h\u0085i ".repeat(40)],
    ["sentences", 'Mr. Smith went. Dr. Who? yes! no. a. B. "Hi." Then (he said.) And so! on. '.repeat(40)],
    ["marks after spaces", " e\u0301 \u0301a \u200d\u{1f600} \u0e33 ".repeat(60)],
    ["flags", "🇩🇪🇫🇷\u{1f1e9} 🇩🇪".repeat(60)],
    ["CJK", "日本語のテキストです。東京都に住んでいます、はい！テキスト？ー\u3099中文，中文：".repeat(30)],
    ["one long word", "a".repeat(3000) + " b " + "c".repeat(700)],
  ])("are the same when chunked: %s", (_name, text) => {
    for (const locale of ["en", "ja", "de"]) {
      const want = reference([text, text], locale);
      for (const chunkLength of CHUNK_LENGTHS) expect(chunked([text, text], locale, chunkLength), `${locale}, chunks of ${chunkLength}`).toEqual(want);
    }
  });

  it("are the same when chunked, for random texts of tricky pieces in several locales", () => {
    for (let seed = 1; seed <= 70; seed++) {
      const texts = randomTexts(seed);
      const locale = LOCALES[seed % LOCALES.length]!;
      const want = reference(texts, locale);
      for (const chunkLength of CHUNK_LENGTHS) {
        expect(chunked(texts, locale, chunkLength), `seed ${seed}, ${locale}, chunks of ${chunkLength}`).toEqual(want);
      }
    }
  });

  it("fall back to English for a locale Intl does not accept, instead of failing", async () => {
    const result = await analyse.run(analyse.input.parse({ texts: ["Hello world. HELLO world."], locale: "not a locale!" }), helpers());
    expect(result.texts[0]).toEqual({ words: 4, characters: 25, charactersWithoutSpaces: 22, segments: 2, repeatedSegments: 1 });
  });
});

describe("analyse input limits", () => {
  const { maxTexts, maxTextLength, maxTotalLength } = ANALYSE_LIMITS;

  it("are 1000 texts, 1,000,000 characters per text and in total", () => {
    expect(ANALYSE_LIMITS).toEqual({ maxTexts: 1000, maxTextLength: 1_000_000, maxTotalLength: 1_000_000 });
  });

  it("accept texts up to the total limit and refuse more", () => {
    const half = "x".repeat(maxTotalLength / 2);
    expect(analyse.input.safeParse({ texts: [half, half] }).success).toBe(true);
    expect(analyse.input.safeParse({ texts: ["x".repeat(maxTextLength)] }).success).toBe(true);
    const tooMuch = analyse.input.safeParse({ texts: [half, half, "x"] });
    expect(tooMuch.success).toBe(false);
    expect(tooMuch.error?.issues[0]).toMatchObject({ path: ["texts"], message: expect.stringContaining("in total") });
    expect(analyse.input.safeParse({ texts: ["x".repeat(maxTextLength + 1)] }).success).toBe(false);
    expect(analyse.input.safeParse({ texts: Array.from({ length: maxTexts }, () => "x") }).success).toBe(true);
    expect(analyse.input.safeParse({ texts: Array.from({ length: maxTexts + 1 }, () => "x") }).success).toBe(false);
  });

  it("are described in the input schema", () => {
    const schema = JSON.stringify(z.toJSONSchema(analyse.input, { io: "input" }));
    expect(schema).toContain(`1 to ${maxTexts} texts, at most ${maxTotalLength} characters (UTF-16 code units) in total`);
    expect(schema).toContain(`"maxItems":${maxTexts}`);
    expect(schema).toContain(`"maxLength":${maxTextLength}`);
  });
});
