import { createHash, randomUUID } from "node:crypto";
import stringify from "safe-stable-stringify";
import type { Logger } from "pino";
import type { CallbacksRepository } from "../db/callbacks.js";
import type { ListFilters, RequestsRepository } from "../db/requests.js";
import type { AsyncRequestRow, TenantRow } from "../db/schema.js";
import type { TenantsRepository } from "../db/tenants.js";
import { toAsyncRequest } from "../shared/async-request.js";
import type { PubSub } from "../infra/pubsub.js";
import type { Queues } from "../infra/queues.js";
import type { CallbackStatus } from "../shared/callbacks.js";
import type { Clock } from "../shared/clock.js";
import { AppError, conflict, invalid, notFound, zodFieldErrors } from "../shared/errors.js";
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

const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
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
  defaults: { maxConcurrent: number; maxQueued: number };
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

  async function requireTenant(tenantId: string): Promise<TenantRow> {
    const tenant = await deps.tenants.get(tenantId);
    if (!tenant) throw notFound(`Tenant ${tenantId}`);
    return tenant;
  }

  const effectiveLimits = (tenant: TenantRow) => ({
    maxConcurrent: tenant.maxConcurrent ?? deps.defaults.maxConcurrent,
    maxQueued: tenant.maxQueued ?? deps.defaults.maxQueued,
  });

  return {
    async submit(caller: Caller, body: SubmitInput, idempotencyKey?: string): Promise<SubmitOutcome> {
      const action = catalog.get(body.action);
      if (!action) {
        throw invalid(`Unknown action "${body.action}"`, [
          { path: "action", message: `must be one of: ${[...catalog.keys()].join(", ")}` },
        ]);
      }
      const parsed = action.input.safeParse(body.input);
      if (!parsed.success) {
        throw invalid(`Invalid input for action "${action.name}"`, zodFieldErrors(parsed.error, "input"));
      }
      const urlProblem = body.callbackUrl === undefined ? undefined : deps.checkCallbackUrl(body.callbackUrl);
      if (urlProblem) throw invalid("Invalid callbackUrl", [{ path: "callbackUrl", message: urlProblem }]);
      const now = clock.now();
      const limits = effectiveLimits(await requireTenant(caller.tenantId));
      const outcome = await repo.insertWithinLimit(
        {
          id: randomUUID(),
          tenantId: caller.tenantId,
          createdBy: caller.clientId,
          action: action.name,
          status: "QUEUED",
          input: body.input ?? null,
          metadata: body.metadata ?? null,
          callbackUrl: body.callbackUrl ?? null,
          createdAt: now,
          updatedAt: now,
        },
        limits.maxQueued,
        idempotencyKey === undefined
          ? undefined
          : {
              clientId: caller.clientId,
              key: idempotencyKey,
              requestDigest: createHash("sha256").update(stringify(body) ?? "").digest("hex"),
              notBefore: new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS),
              responseStatus: 202,
              responseFor: (row) => ({ asyncRequest: toAsyncRequest(row) }),
            },
      );
      switch (outcome.kind) {
        case "queue-full":
          throw new AppError("limit_exceeded", `Your tenant already has ${outcome.queued} QUEUED requests, its limit; retry later`, {
            retryAfter: QUEUE_FULL_RETRY_AFTER_SECONDS,
          });
        case "key-reused":
          throw new AppError("idempotency_key_reused", "This Idempotency-Key was used with a different request body in the last 24 h; use a new key");
        case "replay": {
          const id = (outcome.body as { asyncRequest: { id: string } }).asyncRequest.id;
          return { status: outcome.status, body: outcome.body, replayed: true, id };
        }
        case "created":
          break;
      }
      const { row } = outcome;
      try {
        await queues.enqueueRun(row.id);
      } catch (error) {
        // The row is the source of truth: the sweeper enqueues it once Redis answers again.
        logger.warn({ err: error, asyncRequestId: row.id }, "enqueue failed; the sweeper will enqueue the request");
      }
      return { status: 202, body: { asyncRequest: toAsyncRequest(row) }, replayed: false, id: row.id };
    },

    async limits(caller: Caller) {
      const limits = effectiveLimits(await requireTenant(caller.tenantId));
      const [running, queued] = await Promise.all([repo.count(caller.tenantId, "RUNNING"), repo.count(caller.tenantId, "QUEUED")]);
      return {
        concurrentRequests: { limit: limits.maxConcurrent, count: running },
        queued: { limit: limits.maxQueued, count: queued },
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
    async cancel(caller: Caller, id: string): Promise<AsyncRequestRow> {
      const before = await getOwned(caller, id);
      if (isFinal(before.status)) throw conflict(`Async request ${id} is already ${before.status}`);
      const cancelled = await repo.transition(id, "CANCELLED", clock.now(), {
        errorCode: "CANCELLED",
        errorDesc: `Cancelled by ${caller.clientId}`,
      });
      if (!cancelled) {
        const now = await getOwned(caller, id);
        throw conflict(`Async request ${id} is already ${now.status}`);
      }
      await events.publishStatus({ id, status: "CANCELLED" });
      await Promise.allSettled([
        events.publishCancel(id),
        // A waiting job is removed; an active one is locked and ends when its action sees the abort.
        queues.jobs.remove(id),
        // If this fails the sweeper enqueues the PENDING callback.
        cancelled.callbackStatus === "PENDING" && queues.enqueueCallback(id, cancelled.callbackSeries),
      ]);
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
