import { z } from "zod";
import { defineAction } from "./types.js";

const input = z
  .object({
    texts: z
      .array(z.string().max(1_000_000))
      .min(1)
      .max(1000)
      .describe("The texts to analyse"),
    locale: z.string().min(2).max(35).default("en").describe("BCP 47 locale used to split words and sentences"),
  })
  .strict();

type TextStats = {
  words: number;
  characters: number;
  charactersWithoutSpaces: number;
  segments: number;
  repeatedSegments: number;
};

/**
 * Text statistics as a translation tool counts them: words and sentences by Unicode rules
 * (Intl.Segmenter), characters as user-perceived graphemes, and segments that repeat an
 * earlier segment (whitespace- and case-insensitive), within a text and across all texts.
 */
export const analyse = defineAction({
  name: "analyse",
  description: "Counts words, characters, segments and repeated segments of each text, with totals.",
  input,
  resultKey: "analysis",
  async run({ texts, locale }, { signal, progress }) {
    const segmenters = segmentersFor(locale);
    const seenAcrossTexts = new Set<string>();
    const results: TextStats[] = [];
    let repeatedAcrossTexts = 0;
    for (const [index, text] of texts.entries()) {
      signal.throwIfAborted();
      const seenInText = new Set<string>();
      const stats: TextStats = { words: 0, characters: 0, charactersWithoutSpaces: 0, segments: 0, repeatedSegments: 0 };
      for (const word of segmenters.word.segment(text)) if (word.isWordLike) stats.words++;
      for (const { segment } of segmenters.grapheme.segment(text)) {
        stats.characters++;
        if (!/^\s+$/u.test(segment)) stats.charactersWithoutSpaces++;
      }
      for (const { segment } of segmenters.sentence.segment(text)) {
        const key = segment.trim().replace(/\s+/gu, " ").toLocaleLowerCase(locale);
        if (!key) continue;
        stats.segments++;
        if (seenInText.has(key)) stats.repeatedSegments++;
        else seenInText.add(key);
        if (seenAcrossTexts.has(key)) repeatedAcrossTexts++;
        else seenAcrossTexts.add(key);
      }
      results.push(stats);
      if (texts.length > 1) await progress(Math.round(((index + 1) / texts.length) * 100));
    }
    const sum = (key: keyof TextStats) => results.reduce((total, stats) => total + stats[key], 0);
    return {
      texts: results,
      totals: {
        words: sum("words"),
        characters: sum("characters"),
        charactersWithoutSpaces: sum("charactersWithoutSpaces"),
        segments: sum("segments"),
        repeatedSegments: repeatedAcrossTexts,
      },
    };
  },
});

function segmentersFor(locale: string) {
  let canonical: string;
  try {
    canonical = Intl.getCanonicalLocales(locale)[0] ?? "en";
  } catch {
    canonical = "en";
  }
  return {
    word: new Intl.Segmenter(canonical, { granularity: "word" }),
    grapheme: new Intl.Segmenter(canonical, { granularity: "grapheme" }),
    sentence: new Intl.Segmenter(canonical, { granularity: "sentence" }),
  };
}
