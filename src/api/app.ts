import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { AppError } from "../shared/errors.js";
import type { ApiServices, AppEnv } from "./env.js";
import { adminAuth } from "./admin-auth.js";
import { observeRequests } from "./observe-requests.js";
import { errorToResponse, invalidRequest, problemResponse } from "./problem.js";
import { requestIds } from "./request-id.js";
import { registerActionRoutes } from "./routes/actions.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerAdminQueueRoutes } from "./routes/admin-queues.js";
import { registerDashboard } from "./routes/dashboard.js";
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
      if (!result.success) throw invalidRequest(result.target, result.error);
    },
  });

  app.use("*", requestIds());
  app.use("*", observeRequests(services));
  app.use("*", async (c, next) => {
    c.set("services", services);
    // No path segment or query parameter may hold U+0000 (PostgreSQL cannot compare with it): one
    // check here instead of one per route and parameter.
    if (c.req.url.includes("%00")) throw new AppError("bad_request", "The URL contains %00 (U+0000), which no path or query parameter may hold");
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
  app.use("/admin/*", adminAuth());
  // The body's type, then its size. A declared Content-Length is checked as a number, without
  // touching the body: reading `c.req.raw.body` (as hono's bodyLimit does first) builds a web
  // Request and stream for every request and costs the fast path its speed. Only a body of
  // unknown length (chunked, or handed in-process without a length) is counted as it streams.
  const limitChunked = bodyLimit({
    maxSize: options.bodyLimit,
    onError: () => {
      throw new AppError("payload_too_large", `The request body is larger than ${options.bodyLimit} bytes`);
    },
  });
  app.use("*", async (c, next) => {
    const length = c.req.header("content-length");
    const chunked = c.req.header("transfer-encoding") !== undefined;
    const checked = c.req.path.startsWith("/api/") || c.req.path.startsWith("/admin/");
    if (checked && ((length !== undefined && length !== "0") || chunked) && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      throw new AppError("unsupported_media_type", "Send the body as application/json");
    }
    if (length !== undefined && !chunked) {
      if (Number(length) > options.bodyLimit) throw new AppError("payload_too_large", `The request body is larger than ${options.bodyLimit} bytes`);
      return next();
    }
    return limitChunked(c, next);
  });

  registerHealthRoutes(app);
  registerActionRoutes(app);
  registerAsyncRequestRoutes(app, services.catalog);
  registerCallbackRoutes(app);
  registerEventRoutes(app, options.events);
  registerOAuthRoutes(app);
  registerAdminRoutes(app);
  registerAdminQueueRoutes(app);
  registerDashboard(app, services.queueControl);
  registerDocsRoutes(app, { version: options.version });

  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToResponse(error, c, services.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;

/** What a worker-only process serves when METRICS_PORT is set: health, readiness and metrics. */
export function createOpsApp(services: ApiServices) {
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", requestIds());
  app.use("*", observeRequests(services));
  app.use("*", async (c, next) => {
    c.set("services", services);
    await next();
  });
  registerHealthRoutes(app);
  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToResponse(error, c, services.logger));
  return app;
}
