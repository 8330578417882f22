import { defineAction, z } from "ricochet";

/**
 * CPU-bound: counts words in a text of up to 1 MB. It runs in Ricochet's worker-thread pool
 * (`runIn: "thread"`), so a long text never blocks the event loop that serves the API and
 * delivers callbacks.
 */
export const wordStats = defineAction({
  name: "word-stats",
  description: "Counts the words of a text and lists the most frequent ones",
  input: z.object({ text: z.string().max(1_000_000), top: z.number().int().min(1).max(100).default(5) }),
  result: z.object({ words: z.number().int(), distinct: z.number().int(), top: z.array(z.object({ word: z.string(), count: z.number().int() })) }),
  resultKey: "stats",
  runIn: "thread",
  timeLimitMs: 30_000,
  async run({ text, top }) {
    const counts = new Map<string, number>();
    let words = 0;
    for (const match of text.toLowerCase().matchAll(/\p{L}+(?:['’]\p{L}+)*/gu)) {
      words++;
      counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
    }
    const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
    return { words, distinct: counts.size, top: ranked.map(([word, count]) => ({ word, count })) };
  },
});
