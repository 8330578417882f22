/**
 * Loads user actions from the modules named in ACTIONS: relative or absolute paths (TypeScript
 * or JavaScript; .ts is compiled on the fly by tsx) or package names, resolved from the current
 * directory. Problems are collected and thrown as one CatalogError, naming each module.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CatalogError, type SourcedAction } from "./catalog.js";
import { exportedActions } from "./module-actions.js";

const TYPESCRIPT = /\.[cm]?tsx?$/;
let tsxRegistered = false;

/** Node can import .ts only through tsx; register it once, unless this code already runs from source under tsx or vitest. */
async function enableTypeScript(): Promise<void> {
  if (tsxRegistered || import.meta.url.endsWith(".ts")) return;
  const { register } = await import("tsx/esm/api");
  register();
  tsxRegistered = true;
}

/** The module's URL: a path from `cwd`, or a package resolved from `cwd`'s node_modules. */
export function resolveActionModule(specifier: string, cwd: string): string {
  if (specifier.startsWith(".") || isAbsolute(specifier)) {
    const path = resolve(cwd, specifier);
    if (!existsSync(path)) throw new Error(`no file at ${path}`);
    return pathToFileURL(path).href;
  }
  return pathToFileURL(createRequire(join(cwd, "package.json")).resolve(specifier)).href;
}

export async function loadActionModules(specifiers: readonly string[], cwd = process.cwd()): Promise<SourcedAction[]> {
  const problems: string[] = [];
  const loaded: SourcedAction[] = [];
  for (const specifier of specifiers) {
    let url: string;
    try {
      url = resolveActionModule(specifier, cwd);
    } catch (error) {
      problems.push(`ACTIONS: "${specifier}" cannot be found (${(error as Error).message.split("\n")[0]})`);
      continue;
    }
    try {
      if (TYPESCRIPT.test(new URL(url).pathname)) await enableTypeScript();
      const actions = exportedActions(await import(url));
      if (actions.length === 0) problems.push(`ACTIONS: "${specifier}" exports no action made with defineAction`);
      for (const action of actions) loaded.push({ action, source: url });
    } catch (error) {
      problems.push(`ACTIONS: "${specifier}" failed to load: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  if (problems.length) throw new CatalogError(problems);
  return loaded;
}
