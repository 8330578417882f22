/** Durations such as `500ms`, `15s`, `2m`, `1h`, `30d`, or a bare number of milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a duration (examples: 500ms, 15s, 2m, 1h, 30d)`);
  const value = Number(match[1]);
  const unit = match[2] ?? "ms";
  const factor = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as "ms" | "s" | "m" | "h" | "d"];
  return Math.round(value * factor);
}

