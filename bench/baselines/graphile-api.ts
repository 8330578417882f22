/**
 * Peer (d), submit side: the same bare Hono POST handler as baseline (b), but the job goes into
 * PostgreSQL with graphile-worker's `addJob` (one INSERT through its `add_job` function) before
 * the 202. Env: PORT, DATABASE_URL (a fresh database; graphile-worker migrates its schema at
 * start). GET /readyz answers 200 once migrated.
 */
import { serve } from "@hono/node-server";
import { Logger, makeWorkerUtils } from "graphile-worker";
import { Hono } from "hono";

const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(level, message);
});
const utils = await makeWorkerUtils({ connectionString: process.env.DATABASE_URL, logger });
await utils.migrate();

const app = new Hono();
app.get("/readyz", (c) => c.json({ status: "ready" }));
app.post("/api/v1/async", async (c) => {
  const body = await c.req.json<Record<string, unknown>>();
  const job = await utils.addJob("deliver", body, { maxAttempts: 11 });
  return c.json({ asyncRequest: { id: job.id, status: "QUEUED" } }, 202);
});

serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: "127.0.0.1" });
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => void Promise.resolve(utils.release()).finally(() => process.exit(0)));
}
