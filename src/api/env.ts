import type { Logger } from "pino";
import type { Metrics } from "../infra/metrics.js";
import type { AdminService } from "../services/admin.js";
import type { AsyncRequestsService } from "../services/async-requests.js";
import type { OAuthService } from "../services/oauth.js";
import type { QueueControl } from "../services/queue-control.js";
import type { Caller } from "../services/caller.js";
import type { ActionCatalog } from "../core/actions/catalog.js";

/** What a handler can reach, through the typed Hono context. */
export type ApiServices = {
  asyncRequests: AsyncRequestsService;
  metrics: Metrics;
  oauth: OAuthService;
  admin: AdminService;
  queueControl: QueueControl;
  /** Unset: the admin API answers 404. */
  adminToken: string | undefined;
  /** Set: /metrics needs it as a bearer token. */
  metricsToken: string | undefined;
  catalog: ActionCatalog;
  logger: Logger;
  readiness(): Promise<Record<string, string>>;
  /** Aborts when the process begins to shut down: long-polls answer and event streams end. */
  shuttingDown: AbortSignal;
  /** Calls `listener` at each status change of request `id`, from any process. */
  subscribeStatus(id: string, listener: () => void): () => void;
};

export type AppEnv = {
  Variables: {
    requestId: string;
    services: ApiServices;
    caller: Caller;
  };
};
