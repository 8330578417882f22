import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { safeEqual } from "../auth/credentials.js";
import { AppError, zodFieldErrors } from "../shared/errors.js";
import type { ApiServices, AppEnv } from "./env.js";
import { errorToResponse, problemResponse } from "./problem.js";
import { requestIds } from "./request-id.js";
import { registerActionRoutes } from "./routes/actions.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerOAuthRoutes } from "./routes/oauth.js";
import { registerAsyncRequestRoutes } from "./routes/async-requests.js";
import { registerCallbackRoutes } from "./routes/callbacks.js";
import { registerDocsRoutes } from "./routes/docs.js";
import { registerEventRoutes, type EventStreamOptions } from "./routes/events.js";
import { registerHealthRoutes } from "./routes/health.js";

export type AppOptions = { bodyLimit: number; version: string; events?: EventStreamOptions };

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** Builds the HTTP API around the services it is given; it owns no connections itself. */
export function createApp(services: ApiServices, options: AppOptions) {
  const app = new OpenAPIHono<AppEnv>({
    // Validation failures of params, query and body all become one 422 problem shape.
    defaultHook: (result) => {
      if (!result.success) {
        const where = result.target === "json" ? "request body" : result.target === "param" ? "path" : result.target;
        throw new AppError("invalid", `Invalid ${where}`, { errors: zodFieldErrors(result.error, "") });
      }
    },
  });

  app.use("*", requestIds());
  app.use("*", async (c, next) => {
    c.set("services", services);
    const started = performance.now();
    await next();
    services.logger.debug(
      { requestId: c.var.requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      "request",
    );
  });
  // No path segment or query parameter may hold U+0000 (PostgreSQL cannot compare with it): one
  // check here instead of one per route and parameter.
  app.use("*", async (c, next) => {
    if (/%00/.test(c.req.url)) throw new AppError("bad_request", "The URL contains %00 (U+0000), which no path or query parameter may hold");
    await next();
  });
  app.use(
    "*",
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        problemResponse(c, "method_not_allowed", `${c.req.method} is not allowed here; use ${methods.join(", ")}`, {
          headers: { allow: methods.join(", ") },
        }),
    }),
  );
  // Every /api route needs a bearer token; reading needs `read`, changing needs `write`.
  app.use("/api/*", async (c, next) => {
    const scope = c.req.method === "GET" || c.req.method === "HEAD" ? "read" : "write";
    c.set("caller", await services.oauth.authenticate(c.req.header("authorization"), scope));
    await next();
  });
  app.use("/admin/*", async (c, next) => {
    if (!services.adminToken) throw new AppError("not_found", "The admin API is disabled (set ADMIN_TOKEN)");
    const given = /^Bearer +(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    if (!safeEqual(given, services.adminToken)) {
      throw new AppError("unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>", { headers: { "www-authenticate": 'Bearer realm="ricochet-admin"' } });
    }
    await next();
  });
  app.use("*", async (c, next) => {
    const hasBody = c.req.header("content-length") !== undefined && c.req.header("content-length") !== "0";
    const chunked = c.req.header("transfer-encoding") !== undefined;
    const checked = c.req.path.startsWith("/api/") || c.req.path.startsWith("/admin/");
    if (checked && (hasBody || chunked) && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      throw new AppError("unsupported_media_type", "Send the body as application/json");
    }
    await next();
  });
  // A declared Content-Length is checked as a number, without touching the body: reading
  // `c.req.raw.body` (as hono's bodyLimit does first) builds a web Request and stream for every
  // request and costs the fast path its speed. Only a body of unknown length (chunked, or
  // handed in-process without a length) is counted as it streams.
  const limitChunked = bodyLimit({
    maxSize: options.bodyLimit,
    onError: () => {
      throw new AppError("payload_too_large", `The request body is larger than ${options.bodyLimit} bytes`);
    },
  });
  app.use("*", async (c, next) => {
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (Number(length) > options.bodyLimit) throw new AppError("payload_too_large", `The request body is larger than ${options.bodyLimit} bytes`);
      return next();
    }
    return limitChunked(c, next);
  });

  registerHealthRoutes(app);
  registerActionRoutes(app);
  registerAsyncRequestRoutes(app);
  registerCallbackRoutes(app);
  registerEventRoutes(app, options.events);
  registerOAuthRoutes(app);
  registerAdminRoutes(app);
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", description: "A token from POST /oauth/token" });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" });

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    security: [{ bearerAuth: [] }],
    info: {
      title: "Ricochet",
      version: options.version,
      description: "Asynchronous requests with signed, retried callbacks.",
    },
  });
  registerDocsRoutes(app);

  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToResponse(error, c, services.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;

/** What a worker-only process serves when METRICS_PORT is set: health, readiness and metrics. */
export function createOpsApp(services: ApiServices) {
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", requestIds());
  app.use("*", async (c, next) => {
    c.set("services", services);
    await next();
  });
  registerHealthRoutes(app);
  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToResponse(error, c, services.logger));
  return app;
}
