import { hash, randomUUID } from "node:crypto";
import stringify from "safe-stable-stringify";
import type { Logger } from "pino";
import type { Lifecycle } from "../core/lifecycle.js";
import { effectiveLimits, type Limits } from "../core/limits.js";
import type { CallbacksRepository } from "../db/callbacks.js";
import type { ListFilters, RequestsRepository } from "../db/requests.js";
import type { AsyncRequestRow, RequestWithoutInput } from "../db/schema.js";
import type { TenantsRepository } from "../db/tenants.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Queues } from "../infra/queues.js";
import type { CallbackStatus } from "../shared/callbacks.js";
import type { Clock } from "../shared/clock.js";
import { AppError, conflict, invalid, notFound, zodFieldErrors } from "../shared/errors.js";
import { toAsyncRequest } from "../shared/async-request.js";
import { isFinal, type AsyncRequestStatus } from "../shared/status.js";
import type { ActionCatalog } from "../core/actions/catalog.js";
import type { Caller } from "./caller.js";
import { decodeCursor, encodeCursor } from "./cursor.js";

export type SubmitInput = {
  action: string;
  input: unknown;
  callbackUrl?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
};

/** What POST /api/v1/async answers; a replay repeats the first answer to the same key. */
export type SubmitOutcome = { status: number; body: unknown; replayed: boolean; id: string };

const QUEUE_FULL_RETRY_AFTER_SECONDS = 5;

export type ListQuery = {
  status?: AsyncRequestStatus[] | undefined;
  action?: string[] | undefined;
  callbackStatus?: CallbackStatus[] | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  limit: number;
  cursor?: string | undefined;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Deps = {
  repo: RequestsRepository;
  callbacks: CallbacksRepository;
  /** Why a callback URL is refused at submit (shape, scheme, credentials, literal address), if it is. */
  checkCallbackUrl(url: string): string | undefined;
  tenants: TenantsRepository;
  defaults: Limits;
  lifecycle: Lifecycle;
  queues: Queues;
  events: PubSub;
  catalog: ActionCatalog;
  clock: Clock;
  logger: Logger;
};


/** The operations behind /api/v1/async. Handlers parse HTTP, call one of these, and map the result. */
export function asyncRequestsService(deps: Deps) {
  const { repo, queues, events, catalog, clock, logger } = deps;

  async function getOwned(caller: Caller, id: string): Promise<AsyncRequestRow> {
    const row = UUID.test(id) ? await repo.get(caller.tenantId, id) : undefined;
    if (!row) throw notFound(`Async request ${id}`);
    return row;
  }


  return {
    async submit(caller: Caller, body: SubmitInput, idempotencyKey?: string): Promise<SubmitOutcome> {
      const action = catalog.get(body.action);
      if (!action) {
        throw invalid(`Unknown action "${body.action}"`, [
          { path: "action", message: `must be one of: ${[...catalog.keys()].join(", ")}` },
        ]);
      }
      if (action.maxInputBytes !== undefined) {
        const size = Buffer.byteLength(JSON.stringify(body.input ?? null));
        if (size > action.maxInputBytes) {
          throw invalid(`Input too large for action "${action.name}"`, [{ path: "input", message: `must be at most ${action.maxInputBytes} bytes of JSON (got ${size})` }]);
        }
      }
      const parsed = action.input.safeParse(body.input);
      if (!parsed.success) {
        throw invalid(`Invalid input for action "${action.name}"`, zodFieldErrors(parsed.error, "input"));
      }
      const urlProblem = body.callbackUrl === undefined ? undefined : deps.checkCallbackUrl(body.callbackUrl);
      if (urlProblem) throw invalid("Invalid callbackUrl", [{ path: "callbackUrl", message: urlProblem }]);
      const now = clock.now();
      const outcome = await deps.lifecycle.submit({
        request: {
          id: randomUUID(),
          tenantId: caller.tenantId,
          createdBy: caller.clientId,
          action: action.name,
          input: body.input ?? null,
          metadata: body.metadata ?? null,
          callbackUrl: body.callbackUrl ?? null,
          createdAt: now,
        },
        idempotency:
          idempotencyKey === undefined
            ? undefined
            : { clientId: caller.clientId, key: idempotencyKey, requestDigest: hash("sha256", stringify(body) ?? "", "hex") },
      });
      switch (outcome.kind) {
        case "queue-full":
          throw new AppError("limit_exceeded", "Your tenant has reached its limit of QUEUED requests; retry later", {
            retryAfter: QUEUE_FULL_RETRY_AFTER_SECONDS,
          });
        case "key-reused":
          throw new AppError("idempotency_key_reused", "This Idempotency-Key was used with a different request body in the last 24 h; use a new key");
        case "replay": {
          const id = (outcome.body as { asyncRequest: { id: string } }).asyncRequest.id;
          return { status: outcome.status, body: outcome.body, replayed: true, id };
        }
        case "created":
          return { status: 202, body: { asyncRequest: toAsyncRequest(outcome.row) }, replayed: false, id: outcome.row.id };
      }
    },

    /** The tenant's limits and their use, from the counters the life-cycle keeps (no count(*)). */
    async limits(caller: Caller) {
      const tenant = await deps.tenants.get(caller.tenantId);
      if (!tenant) throw notFound(`Tenant ${caller.tenantId}`);
      const limits = effectiveLimits(tenant, deps.defaults);
      return {
        concurrentRequests: { limit: limits.maxConcurrent, count: tenant.runningCount },
        queued: { limit: limits.maxQueued, count: tenant.queuedCount },
      };
    },

    get: getOwned,

    /** Long-poll: answers at once if finished or `waitMs` is 0, else at the next status change. */
    async waitForChange(caller: Caller, id: string, waitMs: number, signal?: AbortSignal): Promise<AsyncRequestRow> {
      const next = events.nextChange(id, waitMs, signal);
      try {
        const row = await getOwned(caller, id);
        if (waitMs <= 0 || isFinal(row.status)) return row;
        await next.promise;
        return await getOwned(caller, id);
      } finally {
        next.cancel();
      }
    },

    async result(caller: Caller, id: string): Promise<{ resultKey: string; result: unknown }> {
      const row = await getOwned(caller, id);
      if (row.status !== "COMPLETED") {
        throw conflict(`Async request ${id} is ${row.status}; its result exists once it is COMPLETED`);
      }
      return { resultKey: catalog.get(row.action)?.resultKey ?? "result", result: row.result };
    },

    async list(caller: Caller, query: ListQuery): Promise<{ rows: AsyncRequestRow[]; nextCursor: string | null }> {
      if (query.from && query.to && query.from >= query.to) {
        throw invalid("`from` must be before `to`", [{ path: "from", message: "must be before to" }]);
      }
      const filters: ListFilters = {
        tenantId: caller.tenantId,
        status: query.status,
        action: query.action,
        callbackStatus: query.callbackStatus,
        from: query.from,
        to: query.to,
        after: query.cursor ? decodeCursor(query.cursor) : undefined,
        limit: query.limit + 1,
      };
      const rows = await repo.list(filters);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return { rows: page, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
    },

    /** Cancels a QUEUED or RUNNING request; a running action's AbortSignal fires. */
    async cancel(caller: Caller, id: string): Promise<RequestWithoutInput> {
      const before = await getOwned(caller, id);
      if (isFinal(before.status)) throw conflict(`Async request ${id} is already ${before.status}`);
      const cancelled = await deps.lifecycle.cancel(id, caller.clientId);
      if (!cancelled) {
        const now = await getOwned(caller, id);
        throw conflict(`Async request ${id} is already ${now.status}`);
      }
      return cancelled;
    },

    /** Starts a new attempt series for a finished request's callback. */
    async redeliver(caller: Caller, id: string): Promise<AsyncRequestRow> {
      const row = await getOwned(caller, id);
      if (!row.callbackUrl) throw conflict(`Async request ${id} has no callbackUrl`);
      if (!isFinal(row.status)) throw conflict(`Async request ${id} is ${row.status}; its callback is sent when it finishes`);
      const started = await deps.callbacks.startSeries(caller.tenantId, id, clock.now());
      if (!started) throw conflict(`The callback of ${id} is being delivered (${row.callbackStatus}); redeliver once it is DELIVERED or EXHAUSTED`);
      await queues.enqueueCallback(id, started.callbackSeries).catch((error: unknown) =>
        logger.warn({ err: error, asyncRequestId: id }, "enqueue failed; the sweeper will enqueue the callback"),
      );
      return started;
    },

    async callbackAttempts(caller: Caller, id: string) {
      await getOwned(caller, id);
      return deps.callbacks.listAttempts(id);
    },
  };
}

export type AsyncRequestsService = ReturnType<typeof asyncRequestsService>;
