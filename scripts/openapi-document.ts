/**
 * Writes the OpenAPI document of this checkout to the file named by the first argument, as the
 * API serves it at /openapi.json: built in process by the real runtime (API role only), so the
 * actions of ACTIONS and BUILTIN_ACTIONS are in it. It opens no port and starts no process; it
 * needs Redis (REDIS_URL) and keeps its database in a throwaway PGlite directory.
 *
 *   node --import tsx scripts/openapi-document.ts /tmp/openapi.json
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRicochet } from "../src/index.js";
import { deleteKeys } from "../test/helpers/redis.js";

const out = process.argv[2];
if (!out) {
  console.error("usage: node --import tsx scripts/openapi-document.ts <out.json>");
  process.exit(2);
}
const dataDir = await mkdtemp(join(tmpdir(), "ricochet-openapi-"));
const prefix = `{openapi-${randomBytes(4).toString("hex")}}`;
const ricochet = createRicochet({
  roles: { api: true, worker: false },
  config: { DATA_DIR: dataDir, DATABASE_URL: undefined, QUEUE_PREFIX: prefix, LOG_LEVEL: "warn" },
});
let redisUrl: string | undefined;
try {
  await ricochet.start();
  redisUrl = ricochet.config.redisUrl;
  const response = await ricochet.app.request("/openapi.json");
  if (response.status !== 200) throw new Error(`/openapi.json answered ${response.status}: ${await response.text()}`);
  await writeFile(out, `${JSON.stringify(await response.json(), null, 2)}\n`);
} finally {
  await ricochet.stop();
  await rm(dataDir, { recursive: true, force: true });
  // Opening the queues wrote their metadata under the throwaway prefix: removed with the rest.
  if (redisUrl) await deleteKeys(prefix, redisUrl).catch((error: unknown) => console.error(`could not remove the keys of ${prefix}: ${String(error)}`));
}
