import { OpenAPIHono } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import { DEFAULT_CALLER } from "../services/caller.js";
import { AppError } from "../shared/errors.js";
import { zodFieldErrors } from "../services/async-requests.js";
import type { ApiServices, AppEnv } from "./env.js";
import { errorToResponse, problemResponse } from "./problem.js";
import { registerActionRoutes } from "./routes/actions.js";
import { registerAsyncRequestRoutes } from "./routes/async-requests.js";
import { registerHealthRoutes } from "./routes/health.js";

export type AppOptions = { bodyLimit: number; version: string };

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

  app.use("*", requestId({ headerName: "X-Request-Id" }));
  app.use("*", async (c, next) => {
    c.set("services", services);
    c.set("caller", DEFAULT_CALLER);
    const started = performance.now();
    await next();
    services.logger.debug(
      { requestId: c.var.requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      "request",
    );
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
  app.use("/api/*", async (c, next) => {
    const hasBody = c.req.header("content-length") !== undefined && c.req.header("content-length") !== "0";
    const chunked = c.req.header("transfer-encoding") !== undefined;
    if ((hasBody || chunked) && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      throw new AppError("unsupported_media_type", "Send the body as application/json");
    }
    await next();
  });
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: options.bodyLimit,
      onError: () => {
        throw new AppError("payload_too_large", `The request body is larger than ${options.bodyLimit} bytes`);
      },
    }),
  );

  registerHealthRoutes(app);
  registerActionRoutes(app);
  registerAsyncRequestRoutes(app);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Ricochet",
      version: options.version,
      description: "Asynchronous requests with signed, retried callbacks.",
    },
  });
  app.get("/docs", swaggerUI({ url: "/openapi.json" }));

  app.notFound((c) => problemResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorToResponse(error, c, services.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;
