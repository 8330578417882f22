import { resolve } from "node:path";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { serveStatic, type ServeStaticOptions } from "@hono/node-server/serve-static";
import type { QueueControl } from "../../services/queue-control.js";
import { DASHBOARD_PATH } from "../admin-auth.js";
import type { AppEnv } from "../env.js";

// bull-board's page asks Google for its fonts: a third party would see every operator who opens
// the dashboard, and a machine without internet waits on a blocking stylesheet. Its own CSS
// falls back to the system's sans-serif.
const THIRD_PARTY_FONTS = /<link [^>]*href="https:\/\/fonts\.googleapis\.com\/[^>]*>/g;

/**
 * bull-board at /admin/queues over the deployment's own `jobs` and `callbacks` queues (those of
 * its QUEUE_PREFIX), behind the admin guard in app.ts. Its assets come from the installed
 * @bull-board/ui package.
 */
export function registerDashboard(app: OpenAPIHono<AppEnv>, queueControl: QueueControl) {
  const adapter = new HonoAdapter(
    // The adapter hands serveStatic a root relative to the current directory; made absolute
    // at once, the assets are still found should the process change directory later.
    (options: ServeStaticOptions = {}) => serveStatic({ ...options, root: resolve(options.root ?? "") }),
  ).setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: Object.values(queueControl.queues).map(
      (queue) => new BullMQAdapter(queue, { description: `Redis keys ${queue.opts.prefix}:${queue.name}:*` }),
    ),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: "Ricochet queues" } },
  });

  app.use(`${DASHBOARD_PATH}/*`, withoutThirdPartyFonts); // the base path included
  app.route(DASHBOARD_PATH, adapter.registerPlugin());
  // The page's own links (its logo) lead to the base with a slash; reloaded, that must still work.
  app.get(`${DASHBOARD_PATH}/`, (c) => c.redirect(DASHBOARD_PATH, 301));
}

const withoutThirdPartyFonts: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
  const html = (await c.res.text()).replace(THIRD_PARTY_FONTS, "");
  c.res = new Response(html, c.res);
};
