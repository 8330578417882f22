import { z } from "zod";
import { defineAction } from "./types.js";

/** Input limits, in UTF-16 code units (JavaScript string length). */
export const ANALYSE_LIMITS = {
  maxTexts: 1000,
  maxTextLength: 1_000_000,
  maxTotalLength: 1_000_000,
} as const;

const input = z
  .object({
    texts: z
      .array(
        z
          .string()
          .max(ANALYSE_LIMITS.maxTextLength)
          .describe(`One text, at most ${ANALYSE_LIMITS.maxTextLength} characters (UTF-16 code units)`),
      )
      .min(1)
      .max(ANALYSE_LIMITS.maxTexts)
      .refine((texts) => texts.reduce((total, text) => total + text.length, 0) <= ANALYSE_LIMITS.maxTotalLength, {
        message: `The texts may hold at most ${ANALYSE_LIMITS.maxTotalLength} characters (UTF-16 code units) in total`,
      })
      .describe(
        `The texts to analyse: 1 to ${ANALYSE_LIMITS.maxTexts} texts, ` +
          `at most ${ANALYSE_LIMITS.maxTotalLength} characters (UTF-16 code units) in total`,
      ),
    locale: z.string().min(2).max(35).default("en").describe("BCP 47 locale used to split words and sentences"),
  })
  .strict();

export type TextStats = {
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
 *
 * Runs in linear time in the size of its input (see `forEachSegment`), and declares
 * `runIn: "thread"`: it is pure CPU work and is run off the event loop by the thread pool.
 */
export const analyse = defineAction({
  name: "analyse",
  description: "Counts words, characters, segments and repeated segments of each text, with totals.",
  input,
  resultKey: "analysis",
  runIn: "thread",
  // Linear: 1 MB of text takes well under a second; a minute means something is wrong.
  timeLimitMs: 60_000,
  async run({ texts, locale }, { signal, progress }) {
    const analyser = createTextAnalyser(locale);
    const results: TextStats[] = [];
    for (const [index, text] of texts.entries()) {
      signal.throwIfAborted();
      results.push(analyser.analyse(text));
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
        repeatedSegments: analyser.repeatedAcrossTexts(),
      },
    };
  },
});

/**
 * Analyses texts one after the other; remembers the segments seen so far, so that
 * `repeatedAcrossTexts` counts segments that repeat any earlier one, in any text.
 * Exported for tests (`chunkLength` small makes every text cross many chunk borders).
 */
export function createTextAnalyser(locale: string, options: { chunkLength?: number } = {}) {
  const canonical = canonicalLocale(locale);
  const chunkLength = options.chunkLength ?? DEFAULT_CHUNK_LENGTH;
  const grapheme = new Intl.Segmenter(canonical, { granularity: "grapheme" });
  // A chunk of white space only has no word-like segment and no sentence with a non-blank key.
  const blank = (chunk: string) => BLANK.test(chunk);
  const words: Segmentation = {
    segmenter: new Intl.Segmenter(canonical, { granularity: "word" }),
    isSafeBreak: isWordBreakSafe,
    isCleanCut: isCleanWordCut,
    visitChunkFast: blank,
  };
  const sentences: Segmentation = {
    segmenter: new Intl.Segmenter(canonical, { granularity: "sentence" }),
    isSafeBreak: isSentenceBreakSafe,
    visitChunkFast: blank,
  };
  const seenAcrossTexts = new Set<string>();
  let repeatedAcrossTexts = 0;
  return {
    analyse(text: string): TextStats {
      const stats: TextStats = { words: 0, characters: 0, charactersWithoutSpaces: 0, segments: 0, repeatedSegments: 0 };
      forEachSegment(text, words, chunkLength, (segment) => {
        if (segment.isWordLike) stats.words++;
      });
      forEachSegment(
        text,
        { segmenter: grapheme, isSafeBreak: isGraphemeBreakSafe, visitChunkFast: (chunk) => countSimpleGraphemes(chunk, stats) },
        chunkLength,
        ({ segment }) => {
          stats.characters++;
          if (!isWhiteSpaceOnly(segment)) stats.charactersWithoutSpaces++;
        },
      );
      const seenInText = new Set<string>();
      forEachSegment(text, sentences, chunkLength, ({ segment }) => {
        const trimmed = segment.trim();
        if (!trimmed) return;
        const key = trimmed.replace(/\s+/gu, " ").toLocaleLowerCase(canonical);
        stats.segments++;
        if (seenInText.has(key)) stats.repeatedSegments++;
        else seenInText.add(key);
        if (seenAcrossTexts.has(key)) repeatedAcrossTexts++;
        else seenAcrossTexts.add(key);
      });
      return stats;
    },
    repeatedAcrossTexts: () => repeatedAcrossTexts,
  };
}

function canonicalLocale(locale: string): string {
  try {
    return Intl.getCanonicalLocales(locale)[0] ?? "en";
  } catch {
    return "en";
  }
}

/*
 * Why the text is cut into chunks
 * -------------------------------
 * In the V8 of Node 20 (fixed upstream in 2024, crbug.com/326176949), every segment that
 * Intl.Segmenter hands out costs time proportional to the length of the *whole* string
 * being segmented. Segmenting a text into k segments thus costs O(k * length): quadratic
 * for graphemes and words (k grows with the length), and for sentences when a text has
 * many of them. 160 KB of prose took ~29 s, 1 MB of one long sentence ~20 minutes.
 *
 * So each text is segmented chunk by chunk, every chunk about `chunkLength` (256) code
 * units long, which keeps the work linear. A chunk ends only where the text has a boundary
 * that the segmenter finds in the whole text too, and after which its rules do not look
 * back (Unicode UAX #29, which ICU implements), so the segments, and the counts, are exactly
 * those of segmenting the whole text at once. The rule, per granularity, for a cut between
 * the characters `prev` and `next`:
 *
 * - all granularities: `prev` is a line or paragraph break: LF, CR not followed by LF,
 *   NEL (U+0085), LS (U+2028) or PS (U+2029) (UAX #29 GB4, WB3a, SB4 always break there);
 * - words: `prev` is a space, a tab or CJK punctuation (、。，！？；：) and `next` is a
 *   letter (\p{L}, BMP) or printable ASCII other than space: no rule joins those, none looks
 *   back past `prev`, and a dictionary run (Thai, CJK, ...) cannot span the cut;
 * - graphemes: `prev` and `next` are both "simple" (ASCII but not CR LF, Latin-1 and Latin
 *   Extended-A letters, CJK ideographs, kana, Hangul syllables, CJK punctuation: GB999
 *   between them), or `prev` is a line break;
 * - sentences: `prev` is a space that follows `.`, `!` or `?` (then maybe closing quotes or
 *   brackets, then spaces) and `next` is an uppercase ASCII letter, or a lowercase one after
 *   `!` or `?` (SB11; SB7/SB8 do not apply); or `prev` is 。！？ and `next` is a CJK ideograph,
 *   kana or a Hangul syllable.
 *
 * The cut is the last such place in the second half of the chunk. A stretch of
 * `chunkLength / 2` code units without one (one giant word, a run of spaces, emoji without
 * spaces, Thai or CJK without spaces or punctuation) is left to the segmenter itself: it
 * segments a window `LOOKAHEAD` units longer than the chunk and keeps the segments that end
 * within the chunk. Segmentation restarts cleanly at any boundary it found, so this gives the
 * same segments too, as long as no boundary decision needs more than `LOOKAHEAD` (256)
 * characters of lookahead (UAX #29 needs a few, except SB8 across long runs of digits or
 * symbols). Words need one more care: ICU splits runs of Thai, Lao, Khmer, Myanmar, CJK
 * letters with a dictionary over the whole run, so a word window ends at a boundary with a
 * non-letter on one side, and grows (to `MAX_WINDOW`, 1024) to find one; only a run of
 * letters and marks longer than that is cut between two of its words, where the words next
 * to the cut may differ from segmenting the whole text. A single segment longer than the
 * window (a 1 MB sentence) doubles the window until the segment fits; only that one segment
 * is taken from a window that big, so this costs O(length of the segment).
 */
const DEFAULT_CHUNK_LENGTH = 256;
const LOOKAHEAD = 256;
const MAX_WINDOW = 1024;

type Boundary = (text: string, index: number) => boolean;

type Segmentation = {
  segmenter: Intl.Segmenter;
  /** Where a chunk may end (see above). */
  isSafeBreak: Boundary;
  /** Which of the segmenter's own boundaries a window may end at (default: any). */
  isCleanCut?: Boundary;
  /** Counts a whole chunk without the segmenter if it can; returns false otherwise. */
  visitChunkFast?: (chunk: string) => boolean;
};

function forEachSegment(
  text: string,
  segmentation: Segmentation,
  chunkLength: number,
  visit: (segment: Intl.SegmentData) => void,
): void {
  const { segmenter, isSafeBreak, visitChunkFast } = segmentation;
  const visitChunk = (chunk: string) => {
    if (visitChunkFast?.(chunk)) return;
    for (const segment of segmenter.segment(chunk)) visit(segment);
  };
  const half = Math.max(1, chunkLength >> 1);
  let start = 0;
  while (start < text.length) {
    if (text.length - start <= chunkLength) {
      visitChunk(start === 0 ? text : text.slice(start));
      return;
    }
    let end = -1;
    for (let index = start + chunkLength; index > start + half; index--) {
      if (isSafeBreak(text, index)) {
        end = index;
        break;
      }
    }
    if (end > 0) {
      visitChunk(text.slice(start, end));
      start = end;
    } else {
      start = segmentWindow(text, start, segmentation, chunkLength, visit);
    }
  }
}

/**
 * Visits the segments of a window of the text from `start` that end within its first `limit`
 * units (`chunkLength` at first) and at a clean cut; returns where it stopped. See above.
 */
function segmentWindow(
  text: string,
  start: number,
  { segmenter, isCleanCut }: Segmentation,
  chunkLength: number,
  visit: (segment: Intl.SegmentData) => void,
): number {
  const maxWindow = Math.max(MAX_WINDOW, chunkLength * 2);
  // The first window is a chunk long; the next one `maxWindow` (looking for a clean cut costs
  // each segment O(window), so better once than at every doubling); then each doubles.
  for (let limit = chunkLength; ; limit = limit < maxWindow ? maxWindow : limit * 2) {
    const end = Math.min(text.length, start + limit + LOOKAHEAD);
    const keepAll = end === text.length;
    const enlarged = limit > chunkLength;
    const segments: Intl.SegmentData[] = [];
    let clean = 0;
    for (const segment of segmenter.segment(text.slice(start, end))) {
      const segmentEnd = segment.index + segment.segment.length;
      if (!keepAll && segmentEnd > limit) break;
      segments.push(segment);
      const cut = start + segmentEnd;
      if (cut === text.length || !isCleanCut || isCleanCut(text, cut)) clean = segments.length;
      // Beyond the first window, stop at the first clean cut, or, beyond `maxWindow`, after
      // the first segment: the many short segments that may follow cost O(window) each here.
      if ((enlarged && clean > 0) || limit > maxWindow) break;
    }
    // No clean cut within `maxWindow`: cut at the last boundary (see above).
    const take = clean > 0 ? clean : limit >= maxWindow ? segments.length : 0;
    if (take > 0) {
      for (let index = 0; index < take; index++) visit(segments[index]!);
      const last = segments[take - 1]!;
      return start + last.index + last.segment.length;
    }
  }
}

const LF = 0x0a;
const CR = 0x0d;

function isLineBreakBefore(text: string, index: number): boolean {
  const prev = text.charCodeAt(index - 1);
  return prev === LF || (prev === CR && text.charCodeAt(index) !== LF) || prev === 0x85 || prev === 0x2028 || prev === 0x2029;
}

/** CJK ideographs, kana and Hangul syllables: one grapheme each, no dictionary run crosses a cut before them. */
function isCjkLetter(code: number): boolean {
  return (
    (code >= 0x4e00 && code <= 0x9fff) ||
    (code >= 0x3400 && code <= 0x4dbf) ||
    (code >= 0x3041 && code <= 0x3096) ||
    (code >= 0x30a1 && code <= 0x30fa) ||
    (code >= 0xac00 && code <= 0xd7a3)
  );
}

/** 、。，！？；： */
function isCjkPunctuation(code: number): boolean {
  return code === 0x3001 || code === 0x3002 || code === 0xff0c || code === 0xff01 || code === 0xff1f || code === 0xff1b || code === 0xff1a;
}

function isWordBreakSafe(text: string, index: number): boolean {
  if (isLineBreakBefore(text, index)) return true;
  const prev = text.charCodeAt(index - 1);
  if (prev !== 0x20 && prev !== 0x09 && !isCjkPunctuation(prev)) return false;
  const next = text.charCodeAt(index);
  if (next < 0x80) return next > 0x20 && next < 0x7f;
  return isCjkLetter(next) || LETTER.test(text[index]!);
}

/** A word boundary with something other than a letter or mark on one side: no dictionary run crosses it. */
function isCleanWordCut(text: string, index: number): boolean {
  return !LETTER_OR_MARK_BEFORE.test(text.slice(Math.max(0, index - 2), index)) || !LETTER_OR_MARK_AFTER.test(text.slice(index, index + 2));
}

const LETTER = /^\p{L}$/u;
const LETTER_OR_MARK_BEFORE = /[\p{L}\p{M}]$/u;
const LETTER_OR_MARK_AFTER = /^[\p{L}\p{M}]/u;

/**
 * Characters that are a grapheme of their own next to each other (GB999): ASCII (but CR LF is
 * one grapheme), Latin-1 and Latin Extended-A letters, CJK ideographs, kana, Hangul syllables
 * and CJK punctuation. None is Extend, ZWJ, SpacingMark, Prepend, a regional indicator or a
 * Hangul jamo, and none is white space (\s) outside ASCII.
 */
function isSimpleGrapheme(code: number): boolean {
  return code < 0x80 || (code >= 0xc0 && code <= 0x17f) || isCjkLetter(code) || isCjkPunctuation(code);
}

function isGraphemeBreakSafe(text: string, index: number): boolean {
  const prev = text.charCodeAt(index - 1);
  const next = text.charCodeAt(index);
  if (isSimpleGrapheme(prev) && isSimpleGrapheme(next)) return !(prev === CR && next === LF);
  return isLineBreakBefore(text, index);
}

function isSentenceBreakSafe(text: string, index: number): boolean {
  if (isLineBreakBefore(text, index)) return true;
  const prev = text.charCodeAt(index - 1);
  const next = text.charCodeAt(index);
  // 。！？ then a CJK letter
  if (prev === 0x3002 || prev === 0xff01 || prev === 0xff1f) return isCjkLetter(next);
  if (prev !== 0x20) return false;
  const upper = next >= 0x41 && next <= 0x5a;
  const lower = next >= 0x61 && next <= 0x7a;
  if (!upper && !lower) return false;
  // Back over spaces, then closing quotes and brackets (a few: longer runs are not worth it).
  let at = index - 1;
  const stopAt = Math.max(0, index - 32);
  while (at > stopAt && text.charCodeAt(at) === 0x20) at--;
  while (at > stopAt && isAsciiClose(text.charCodeAt(at))) at--;
  const terminator = text.charCodeAt(at);
  if (terminator === 0x2e) return upper; // "." then lowercase continues the sentence (SB8)
  return terminator === 0x21 || terminator === 0x3f;
}

/** " ' ) ] } — Sentence_Break=Close */
function isAsciiClose(code: number): boolean {
  return code === 0x22 || code === 0x27 || code === 0x29 || code === 0x5d || code === 0x7d;
}

/**
 * A chunk of simple graphemes only (see `isSimpleGrapheme`) has one grapheme per code unit,
 * but CR LF is one: counts it directly, or returns false for any other chunk.
 */
function countSimpleGraphemes(chunk: string, stats: TextStats): boolean {
  if (!SIMPLE_GRAPHEMES.test(chunk)) return false;
  let characters = chunk.length;
  let withoutSpaces = 0;
  for (let index = 0; index < chunk.length; index++) {
    const code = chunk.charCodeAt(index);
    if (code === LF && index > 0 && chunk.charCodeAt(index - 1) === CR) characters--;
    // \s among simple graphemes: tab, LF, VT, FF, CR, space
    if (code !== 0x20 && (code < 0x09 || code > 0x0d)) withoutSpaces++;
  }
  stats.characters += characters;
  stats.charactersWithoutSpaces += withoutSpaces;
  return true;
}

const SIMPLE_GRAPHEMES =
  /^[\x00-\x7f\u00c0-\u017f\u3001\u3002\u3041-\u3096\u30a1-\u30fa\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uff01\uff0c\uff1a\uff1b\uff1f]*$/;

const BLANK = /^\s*$/u;

function isWhiteSpaceOnly(segment: string): boolean {
  return /^\s+$/u.test(segment);
}
