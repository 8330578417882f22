import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { describeActions } from "../../core/actions/catalog.js";
import type { AppEnv } from "../env.js";

const listActions = createRoute({
  method: "get",
  path: "/api/v1/actions",
  operationId: "listActions",
  tags: ["Actions"],
  summary: "The actions this deployment offers, with their input JSON Schema",
  responses: {
    200: {
      description: "Actions",
      content: {
        "application/json": {
          schema: z.object({
            actions: z.array(
              z.object({
                name: z.string(),
                description: z.string(),
                resultKey: z.string(),
                inputSchema: z.record(z.string(), z.unknown()),
              }),
            ),
          }),
        },
      },
    },
  },
});

export function registerActionRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(listActions, (c) => c.json({ actions: describeActions(c.var.services.catalog) }, 200));
}
