import type { Logger } from "pino";
import type { AsyncRequestsService } from "../services/async-requests.js";
import type { Caller } from "../services/caller.js";
import type { ActionCatalog } from "../worker/actions/catalog.js";

/** What a handler can reach, through the typed Hono context. */
export type ApiServices = {
  asyncRequests: AsyncRequestsService;
  catalog: ActionCatalog;
  logger: Logger;
  readiness(): Promise<Record<string, string>>;
};

export type AppEnv = {
  Variables: {
    requestId: string;
    services: ApiServices;
    caller: Caller;
  };
};
