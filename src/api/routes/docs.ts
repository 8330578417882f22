import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import type { AppEnv } from "../env.js";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};
const assetsDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

/**
 * `/docs`: Swagger UI over `/openapi.json`, with its assets served from the installed
 * swagger-ui-dist package rather than a CDN, so it works on a machine without internet.
 */
export function registerDocsRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/docs", swaggerUI({ url: "/openapi.json", baseUrl: "/docs/assets", title: "Ricochet API" }));
  app.get("/docs/assets/swagger-ui-dist/:file", async (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) return c.notFound();
    return c.body(await readFile(join(assetsDir, file)), 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  });
}
