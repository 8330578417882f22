/**
 * The actions a module offers: every export made with `defineAction`, also inside an exported
 * array or object (`export default [a, b]`, `export default { a, b }`). Used by the catalog
 * loader and by the action threads, so both see the same actions in a module.
 */
import { isActionDefinition, type ActionDefinition } from "./types.js";

export function exportedActions(moduleExports: Record<string, unknown>): ActionDefinition[] {
  const found = new Set<ActionDefinition>();
  for (const value of Object.values(moduleExports)) {
    if (isActionDefinition(value)) {
      found.add(value);
    } else if (typeof value === "object" && value !== null) {
      const items: unknown[] = Array.isArray(value) ? value : Object.values(value);
      for (const item of items) if (isActionDefinition(item)) found.add(item);
    }
  }
  return [...found];
}
