import type { FieldError } from "../shared/errors.js";

/** How deep `input` and `metadata` may nest (objects and arrays); deeper is refused with 422. */
export const MAX_JSON_DEPTH = 64;

/**
 * The one rule for what Ricochet stores: every string (value or key) must be well-formed
 * Unicode without U+0000, and JSON may nest at most MAX_JSON_DEPTH levels. PostgreSQL's jsonb
 * cannot hold NUL or a lone surrogate, and a deep document would exhaust the stack of whatever
 * recurses over it; such input is refused at the edge with the path of the first offending
 * field, so nothing half-written and no batch of other callers' submits can fail because of it.
 * Iterative, so the check itself cannot overflow the stack.
 */
export function findUnstorable(value: unknown, path: string): FieldError | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path, depth: 0 }];
  while (stack.length) {
    const { value: current, path: where, depth } = stack.pop()!;
    if (typeof current === "string") {
      const problem = stringProblem(current);
      if (problem) return { path: where, message: problem };
    } else if (current !== null && typeof current === "object") {
      if (depth >= MAX_JSON_DEPTH) return { path: where, message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
      const entries = Array.isArray(current) ? current.map((item, index) => [String(index), item] as const) : Object.entries(current);
      for (const [key, item] of entries) {
        const keyProblem = stringProblem(key);
        if (keyProblem) return { path: `${where}.${JSON.stringify(key)}`, message: `has a key that ${keyProblem}` };
        stack.push({ value: item, path: `${where}.${key}`, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

function stringProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "contains U+0000 (NUL), which cannot be stored";
  if (!text.isWellFormed()) return "contains a lone UTF-16 surrogate (not valid Unicode)";
  return undefined;
}
