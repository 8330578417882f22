import { readFileSync } from "node:fs";

/** The package version, read once; used in the OpenAPI document and the callback User-Agent. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
