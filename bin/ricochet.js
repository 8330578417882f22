#!/usr/bin/env node
// The `ricochet` CLI. Runs the compiled CLI when `npm run build` has produced it, else the
// TypeScript sources through tsx (a runtime dependency), so a fresh clone works as it is.
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
