import { getTableColumns } from "drizzle-orm";
import type { CallbackStatus } from "../shared/callbacks.js";
import { allowedPredecessors, type AsyncRequestStatus } from "../shared/status.js";
import type { Sql } from "./client.js";
import { asyncRequests, type AsyncRequestRow, type RequestWithoutInput } from "./schema.js";

/**
 * The statements of the request life-cycle, each one round trip. Every change of status also
 * moves the tenant's counters in the same statement, so the limits need neither a lock held
 * across round trips nor a count(*): submits and claims, which can raise a count, lock the
 * tenant row and update it; finishes and take-backs (DISCARD), which only lower one, append
 * their decrements to tenant_counter_changes without touching the tenant row, and the next
 * submit or claim folds them in (LOCK_AND_FOLD), so a finish never waits for the tenant's
 * lock. Batches travel as one
 * JSON parameter (jsonb_to_recordset): the statement text never changes, whatever the batch size,
 * and PostgreSQL and PGlite read it alike.
 *
 * Each statement is prepared once per connection and runs one cached plan, which may have been
 * made while the tables were empty (src/db/client.ts). So every access to a table names the keys
 * it reaches: `t.id = ANY (ARRAY(SELECT … FROM <batch>))` beside the join condition, which the
 * planner can only use as an index condition (a probe per key), or a LATERAL … LIMIT 1 probe.
 * test/db-requests.test.ts fails on a cached plan that scans one of these tables without keys.
 *
 * A status check beside such keys is written `(status IN (…)) IS TRUE`: the same rows, but not a
 * condition an index can serve. Written plainly, it matches the partial index of unfinished
 * requests, and a plan made on small tables ANDs that index with the key probe, so that every
 * claim read the whole backlog's entries (10,000 QUEUED rows: a one-row claim 1.0 → 0.27 ms).
 */

export type NewRequest = {
  id: string;
  tenantId: string;
  createdBy: string;
  action: string;
  input: unknown;
  metadata: Record<string, unknown> | null;
  callbackUrl: string | null;
  createdAt: Date;
};

export type IdempotencyRecord = {
  clientId: string;
  key: string;
  requestDigest: string;
  asyncRequestId: string;
  responseStatus: number;
  responseBody: unknown;
  createdAt: Date;
};

export type StoredKey = { clientId: string; key: string; requestDigest: string; responseStatus: number; responseBody: unknown };

export type ClaimOutcome = { kind: "claimed"; row: AsyncRequestRow } | { kind: "at-limit" } | { kind: "gone" };

export type FinalFields = {
  result?: unknown;
  errorCode?: string | null;
  errorDesc?: string | null;
  errorDetails?: unknown[];
  progress?: number | null;
};

export type AttemptRecord = {
  id: string;
  requestId: string;
  series: number;
  attempt: number;
  webhookId: string;
  url: string;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  errorMessage: string | null;
  responseBody: string | null;
  delivered: boolean;
  /** Where the series stands after this attempt. */
  callbackStatus: CallbackStatus;
  nextAttemptAt: Date | null;
};

const json = (value: unknown) => JSON.stringify(value ?? null);

/**
 * Locks the tenants of `want` (in id order) and folds their pending counter changes (the
 * decrements of finishes and take-backs, see tenant_counter_changes in schema.ts) into what the statement reads and writes:
 * `counters` holds each locked tenant's limits, its current counts (row plus changes) and what
 * was folded, which the statement's UPDATE of the tenant row must add. The changes are deleted
 * only after the lock is held (their key array comes from `lock`), and the sums come from the
 * DELETE's own rows: a change folded meanwhile by a statement that held the lock before us is
 * skipped by our DELETE, and already in the row version our lock returned.
 */
const LOCK_AND_FOLD = `lock AS (
  SELECT t.id, t.max_queued, t.max_concurrent, t.queued_count, t.running_count FROM tenants t
  WHERE t.id = ANY (ARRAY(SELECT tenant_id FROM want))
  ORDER BY t.id
  FOR UPDATE OF t
),
folded AS (
  DELETE FROM tenant_counter_changes c WHERE c.tenant_id = ANY (ARRAY(SELECT id FROM lock))
  RETURNING c.tenant_id, c.queued, c.running
),
pending AS (
  SELECT tenant_id, sum(queued)::int AS q, sum(running)::int AS r, count(*)::int AS n FROM folded GROUP BY tenant_id
),
counters AS (
  SELECT l.id, l.max_queued, l.max_concurrent,
         l.queued_count + coalesce(p.q, 0) AS queued, l.running_count + coalesce(p.r, 0) AS running,
         coalesce(p.q, 0) AS fold_q, coalesce(p.r, 0) AS fold_r, coalesce(p.n, 0) AS folded
  FROM lock l LEFT JOIN pending p ON p.tenant_id = l.id
)`;

const INSERT_WITHIN_LIMITS = `
WITH input AS (
  SELECT x.*, row_number() OVER (PARTITION BY x.tenant_id ORDER BY x.ord) AS rank
  FROM jsonb_to_recordset($1::text::jsonb) AS x(ord int, id uuid, tenant_id text, created_by text, action text,
       input jsonb, metadata jsonb, callback_url text, created_at timestamptz)
),
want AS (SELECT tenant_id, count(*)::int AS n FROM input GROUP BY tenant_id),
${LOCK_AND_FOLD},
locked AS (
  SELECT c.*, least(w.n, greatest(0, coalesce(c.max_queued, $2::int) - c.queued)) AS n
  FROM counters c JOIN want w ON w.tenant_id = c.id
),
admitted AS (
  UPDATE tenants t SET queued_count = t.queued_count + l.fold_q + l.n, running_count = t.running_count + l.fold_r
  FROM locked l WHERE t.id = l.id AND (l.n > 0 OR l.folded > 0) AND t.id = ANY (ARRAY(SELECT id FROM locked))
  RETURNING t.id, l.n
)
INSERT INTO async_requests (id, tenant_id, created_by, action, status, input, metadata, callback_url, created_at, updated_at)
SELECT i.id, i.tenant_id, i.created_by, i.action, 'QUEUED', coalesce(i.input, 'null'::jsonb), i.metadata, i.callback_url, i.created_at, i.created_at
FROM input i JOIN admitted a ON a.id = i.tenant_id AND i.rank <= a.n
RETURNING id`;

const CLAIM_KEYS = `
INSERT INTO idempotency_keys (client_id, key, request_digest, async_request_id, response_status, response_body, created_at)
SELECT x.client_id, x.key, x.request_digest, x.async_request_id, x.response_status, x.response_body, x.created_at
FROM jsonb_to_recordset($1::text::jsonb) AS x(client_id text, key text, request_digest text, async_request_id uuid,
     response_status int, response_body jsonb, created_at timestamptz)
ORDER BY x.client_id, x.key
ON CONFLICT (client_id, key) DO UPDATE SET
  request_digest = excluded.request_digest, async_request_id = excluded.async_request_id,
  response_status = excluded.response_status, response_body = excluded.response_body, created_at = excluded.created_at
  WHERE idempotency_keys.created_at < $2::timestamptz
RETURNING client_id, key`;

/** One primary-key probe per key (LATERAL … LIMIT 1 is never turned into a join over the whole table). */
const FIND_KEYS = `
SELECT k.client_id, k.key, k.request_digest, k.response_status, k.response_body
FROM jsonb_to_recordset($1::text::jsonb) AS x(client_id text, key text)
CROSS JOIN LATERAL (
  SELECT * FROM idempotency_keys k WHERE k.client_id = x.client_id AND k.key = x.key LIMIT 1
) k`;

/**
 * Releasing and discarding keys are failure paths (a refused submit, a failed enqueue): they
 * probe the primary key with every pair of the batch's distinct clients and keys, usually one
 * client's keys.
 */
const RELEASE_KEYS = `
WITH x AS (SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS x(client_id text, key text))
DELETE FROM idempotency_keys k USING x
WHERE k.client_id = x.client_id AND k.key = x.key
  AND k.client_id = ANY (ARRAY(SELECT client_id FROM x)) AND k.key = ANY (ARRAY(SELECT key FROM x))`;

/** Takes back requests that were written but could not be enqueued (only those still QUEUED), with their keys. */
const DISCARD = `
WITH gone AS (
  DELETE FROM async_requests WHERE id = ANY (ARRAY(SELECT value::uuid FROM jsonb_array_elements_text($1::text::jsonb))) AND (status = 'QUEUED') IS TRUE
  RETURNING id, tenant_id
),
x AS (SELECT * FROM jsonb_to_recordset($2::text::jsonb) AS x(client_id text, key text, async_request_id uuid)),
keys AS (
  DELETE FROM idempotency_keys k USING x
  WHERE k.client_id = x.client_id AND k.key = x.key AND x.async_request_id IN (SELECT id FROM gone)
    AND k.client_id = ANY (ARRAY(SELECT client_id FROM x)) AND k.key = ANY (ARRAY(SELECT key FROM x))
),
counts AS (SELECT tenant_id, count(*)::int AS n FROM gone GROUP BY tenant_id),
counted AS (
  -- A decrement, like a finish's: appended, so it takes no tenant lock (and cannot deadlock with a fold).
  INSERT INTO tenant_counter_changes (tenant_id, queued, running) SELECT tenant_id, -n, 0 FROM counts
)
SELECT id FROM gone`;

/**
 * Claims a batch: QUEUED → RUNNING for as many of each tenant's requests (in the batch's order)
 * as its running limit still allows; RUNNING → RUNNING is a re-run after a crash, which keeps its
 * slot. Rows are locked in id order, tenant rows in tenant order, so batches never deadlock.
 */
const CLAIM = `
WITH input AS (
  SELECT x.id, x.ord FROM jsonb_to_recordset($1::text::jsonb) AS x(id uuid, ord int)
),
req AS (
  SELECT r.id, r.tenant_id, r.status, i.ord FROM async_requests r JOIN input i ON i.id = r.id
  WHERE r.id = ANY (ARRAY(SELECT id FROM input)) AND (r.status IN ('QUEUED', 'RUNNING')) IS TRUE
  ORDER BY r.id
  FOR UPDATE OF r
),
queued AS (
  SELECT id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY ord) AS rank FROM req WHERE status = 'QUEUED'
),
want AS (SELECT tenant_id, count(*)::int AS n FROM queued GROUP BY tenant_id),
${LOCK_AND_FOLD},
locked AS (
  SELECT c.*, least(w.n, greatest(0, coalesce(c.max_concurrent, $2::int) - c.running)) AS n
  FROM counters c JOIN want w ON w.tenant_id = c.id
),
slots AS (
  UPDATE tenants t SET queued_count = t.queued_count + l.fold_q - l.n, running_count = t.running_count + l.fold_r + l.n
  FROM locked l WHERE t.id = l.id AND (l.n > 0 OR l.folded > 0) AND t.id = ANY (ARRAY(SELECT id FROM locked))
  RETURNING t.id, l.n
),
go AS (
  SELECT id FROM req WHERE status = 'RUNNING'
  UNION ALL
  SELECT q.id FROM queued q JOIN slots s ON s.id = q.tenant_id AND q.rank <= s.n
),
claimed AS (
  UPDATE async_requests r SET status = 'RUNNING', started_at = $3::timestamptz, runs = r.runs + 1, updated_at = $3::timestamptz
  WHERE r.id = ANY (ARRAY(SELECT id FROM go))
  RETURNING r.*
)
SELECT req.id AS req_id, claimed.* FROM req LEFT JOIN claimed ON claimed.id = req.id`;

/** `r.<column>` for every column of async_requests but its input (from the schema, so none is missed). */
const WITHOUT_INPUT = (alias: string) =>
  Object.values(getTableColumns(asyncRequests))
    .map((column) => column.name)
    .filter((name) => name !== "input")
    .map((name) => `${alias}.${name}`)
    .join(", ");

const GET_MANY_WITHOUT_INPUT = `SELECT ${WITHOUT_INPUT("r")} FROM async_requests r
WHERE r.id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)::uuid))`;

/**
 * Finishes a batch: each request to its final status if its current status allows it, opening
 * its first callback series (exactly once), and each tenant's counters move once for the batch.
 * The update reaches its rows by `id = ANY` alone and looks each row's new values up by id (a
 * jsonb object: a binary search per row, read as a record once). Joined to the batch on id, a plan made on small tables
 * probed async_requests through whichever index has an id column, also one whose leading column
 * the join does not give (tenant_id, created_at, id): a walk over the whole index per row.
 */
const FINISH = `
WITH params AS (SELECT $1::text::jsonb AS batch),
input AS (
  SELECT * FROM jsonb_to_recordset((SELECT batch FROM params)) AS x(id uuid, allowed text)
),
prev AS (
  SELECT r.id, r.tenant_id, r.status FROM async_requests r JOIN input i ON i.id = r.id
  WHERE r.id = ANY (ARRAY(SELECT id FROM input)) AND r.status = ANY (string_to_array(i.allowed, ','))
  ORDER BY r.id
  FOR UPDATE OF r
),
lookup AS MATERIALIZED (
  SELECT (SELECT jsonb_object_agg((e ->> 'id')::uuid::text, e) FROM jsonb_array_elements((SELECT batch FROM params)) e) AS fields,
         (SELECT jsonb_object_agg(id::text, status) FROM prev) AS prior
),
done AS (
  UPDATE async_requests r SET
    (status, finished_at, updated_at, result, error_code, error_desc, error_details, progress, callback_updated_at) = (
      SELECT v.status, v.at, v.at, v.result, v.error_code, v.error_desc, coalesce(v.error_details, '[]'::jsonb), coalesce(v.progress, r.progress), v.at
      FROM jsonb_to_record(l.fields -> r.id::text) AS v(status text, at timestamptz, result jsonb, error_code text, error_desc text, error_details jsonb, progress int)
    ),
    callback_status = CASE WHEN r.callback_url IS NULL THEN NULL ELSE 'PENDING' END,
    callback_series = CASE WHEN r.callback_url IS NULL THEN 0 ELSE 1 END
  FROM lookup l
  WHERE r.id = ANY (ARRAY(SELECT id FROM prev))
  RETURNING ${WITHOUT_INPUT("r")}, l.prior ->> r.id::text AS prior_status
),
deltas AS (
  SELECT tenant_id, count(*) FILTER (WHERE prior_status = 'QUEUED')::int AS q, count(*) FILTER (WHERE prior_status = 'RUNNING')::int AS rn
  FROM done GROUP BY tenant_id
),
counted AS (
  INSERT INTO tenant_counter_changes (tenant_id, queued, running)
  SELECT tenant_id, -q, -rn FROM deltas WHERE q > 0 OR rn > 0
)
SELECT * FROM done`;

export type FinishItem = { id: string; to: AsyncRequestStatus; at: Date; fields: FinalFields };

const RECORD_ATTEMPTS = `
WITH a AS (
  SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS x(id uuid, request_id uuid, series int, attempt int, webhook_id text,
    url text, started_at timestamptz, duration_ms int, status_code int, error_class text, error_message text,
    response_body text, delivered boolean, callback_status text, next_attempt_at timestamptz)
),
moved AS (
  UPDATE async_requests r SET
    callback_status = a.callback_status, callback_attempts = r.callback_attempts + 1,
    callback_last_status_code = a.status_code,
    callback_last_error = CASE WHEN a.delivered THEN NULL ELSE a.error_class || ': ' || a.error_message END,
    callback_last_attempt_at = a.started_at, callback_next_attempt_at = a.next_attempt_at, callback_updated_at = a.started_at
  FROM a WHERE r.id = a.request_id AND r.callback_series = a.series AND r.id = ANY (ARRAY(SELECT request_id FROM a))
  RETURNING r.id
),
recorded AS (
  INSERT INTO callback_attempts (id, request_id, series, attempt, webhook_id, url, started_at, duration_ms, status_code,
    error_class, error_message, response_body, delivered)
  SELECT a.id, a.request_id, a.series, a.attempt, a.webhook_id, a.url, a.started_at, a.duration_ms, a.status_code,
    a.error_class, a.error_message, a.response_body, a.delivered
  FROM a WHERE a.request_id IN (SELECT id FROM moved)
)
SELECT id FROM moved`;

/** Tenants whose counters differ from the table (cheap to ask; the fix below is exact). */
const COUNTER_DRIFT = `
SELECT t.id FROM tenants t
LEFT JOIN (
  SELECT tenant_id, count(*) FILTER (WHERE status = 'QUEUED')::int AS queued, count(*) FILTER (WHERE status = 'RUNNING')::int AS running
  FROM async_requests WHERE status IN ('QUEUED', 'RUNNING') GROUP BY tenant_id
) c ON c.tenant_id = t.id
LEFT JOIN (
  SELECT tenant_id, sum(queued)::int AS queued, sum(running)::int AS running FROM tenant_counter_changes GROUP BY tenant_id
) p ON p.tenant_id = t.id
WHERE t.queued_count + coalesce(p.queued, 0) <> coalesce(c.queued, 0) OR t.running_count + coalesce(p.running, 0) <> coalesce(c.running, 0)`;

export function lifecycleStatements(sql: Sql & { transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> }) {
  return {
    /** Statements outside a transaction run on the pool, one autocommit each. */
    sql: sql as Sql,
    transaction: sql.transaction,

    /** Inserts, in order per tenant, the requests that fit their tenant's queued limit. */
    async insertWithinLimits(tx: Sql, rows: NewRequest[], defaultMaxQueued: number): Promise<Set<string>> {
      const records = rows.map((row, ord) => ({
        ord,
        id: row.id,
        tenant_id: row.tenantId,
        created_by: row.createdBy,
        action: row.action,
        input: row.input,
        metadata: row.metadata,
        callback_url: row.callbackUrl,
        created_at: row.createdAt.toISOString(),
      }));
      const inserted = await tx.query<{ id: string }>(INSERT_WITHIN_LIMITS, [json(records), defaultMaxQueued]);
      return new Set(inserted.map((row) => row.id));
    },

    /** Claims idempotency keys that are new (or expired before `notBefore`); returns the claimed ones. */
    async claimKeys(tx: Sql, records: IdempotencyRecord[], notBefore: Date): Promise<Set<string>> {
      const rows = records.map((r) => ({
        client_id: r.clientId,
        key: r.key,
        request_digest: r.requestDigest,
        async_request_id: r.asyncRequestId,
        response_status: r.responseStatus,
        response_body: r.responseBody,
        created_at: r.createdAt.toISOString(),
      }));
      const claimed = await tx.query<{ client_id: string; key: string }>(CLAIM_KEYS, [json(rows), notBefore.toISOString()]);
      return new Set(claimed.map((row) => keyOf(row.client_id, row.key)));
    },

    async findKeys(tx: Sql, keys: { clientId: string; key: string }[]): Promise<Map<string, StoredKey>> {
      const rows = await tx.query<{ client_id: string; key: string; request_digest: string; response_status: number; response_body: unknown }>(FIND_KEYS, [
        json(keys.map((k) => ({ client_id: k.clientId, key: k.key }))),
      ]);
      return new Map(
        rows.map((row) => [
          keyOf(row.client_id, row.key),
          { clientId: row.client_id, key: row.key, requestDigest: row.request_digest, responseStatus: row.response_status, responseBody: row.response_body },
        ]),
      );
    },

    async releaseKeys(tx: Sql, keys: { clientId: string; key: string }[]): Promise<void> {
      if (keys.length) await tx.query(RELEASE_KEYS, [json(keys.map((k) => ({ client_id: k.clientId, key: k.key })))]);
    },

    async discard(ids: string[], keys: { clientId: string; key: string; asyncRequestId: string }[]): Promise<Set<string>> {
      const gone = await sql.query<{ id: string }>(DISCARD, [
        json(ids),
        json(keys.map((k) => ({ client_id: k.clientId, key: k.key, async_request_id: k.asyncRequestId }))),
      ]);
      return new Set(gone.map((row) => row.id));
    },

    /** Claims a batch of requests (ids distinct); each id's outcome. */
    async claimMany(ids: string[], defaultMaxConcurrent: number, at: Date): Promise<Map<string, ClaimOutcome>> {
      const rows = await sql.query<RawRow & { req_id: string }>(CLAIM, [json(ids.map((id, ord) => ({ id, ord }))), defaultMaxConcurrent, at.toISOString()]);
      const outcomes = new Map<string, ClaimOutcome>(ids.map((id) => [id, { kind: "gone" }]));
      for (const row of rows) outcomes.set(row.req_id, row.id === null ? { kind: "at-limit" } : { kind: "claimed", row: toRow(row) });
      return outcomes;
    },

    async claim(id: string, defaultMaxConcurrent: number, at: Date): Promise<ClaimOutcome> {
      return (await this.claimMany([id], defaultMaxConcurrent, at)).get(id)!;
    },

    /** Finishes a batch of requests (ids distinct); the rows that moved, by id. */
    async finishMany(items: FinishItem[]): Promise<Map<string, RequestWithoutInput & { priorStatus: AsyncRequestStatus }>> {
      const records = items.map(({ id, to, at, fields }) => ({
        id,
        allowed: allowedPredecessors(to).join(","),
        status: to,
        at: at.toISOString(),
        result: fields.result ?? null,
        error_code: fields.errorCode ?? null,
        error_desc: fields.errorDesc ?? null,
        error_details: fields.errorDetails ?? null,
        progress: fields.progress ?? null,
      }));
      const rows = await sql.query<RawRow & { prior_status: AsyncRequestStatus }>(FINISH, [json(records)]);
      return new Map(rows.map((row) => [row.id, { ...toRowWithoutInput(row), priorStatus: row.prior_status }]));
    },

    /** Moves a request to a final status if its current status allows it; undefined when not. */
    async finish(id: string, to: AsyncRequestStatus, at: Date, fields: FinalFields): Promise<(RequestWithoutInput & { priorStatus: AsyncRequestStatus }) | undefined> {
      return (await this.finishMany([{ id, to, at, fields }])).get(id);
    },

    async setProgress(id: string, percent: number, at: Date): Promise<void> {
      await sql.query("UPDATE async_requests SET progress = $2, updated_at = $3 WHERE id = $1 AND (status = 'RUNNING') IS TRUE", [id, percent, at.toISOString()]);
    },

    async getById(id: string): Promise<AsyncRequestRow | undefined> {
      const [row] = await sql.query<RawRow>("SELECT * FROM async_requests WHERE id = $1", [id]);
      return row && toRow(row);
    },

    /** Many requests without their input, in one round trip (the callback worker reads its jobs' requests together). */
    async getManyWithoutInput(ids: string[]): Promise<Map<string, RequestWithoutInput>> {
      // The ids as one JSON parameter, like every batch here (the same on pg and PGlite).
      const rows = await sql.query<RawRow>(GET_MANY_WITHOUT_INPUT, [JSON.stringify(ids)]);
      return new Map(rows.map((raw) => [raw.id, toRowWithoutInput(raw)] as const));
    },

    /** Records attempts and moves their series on; returns the request ids whose series is still current. */
    async recordAttempts(attempts: AttemptRecord[]): Promise<Set<string>> {
      const rows = attempts.map((a) => ({
        id: a.id,
        request_id: a.requestId,
        series: a.series,
        attempt: a.attempt,
        webhook_id: a.webhookId,
        url: a.url,
        started_at: a.startedAt.toISOString(),
        duration_ms: a.durationMs,
        status_code: a.statusCode,
        error_class: a.errorClass,
        error_message: a.errorMessage,
        response_body: a.responseBody,
        delivered: a.delivered,
        callback_status: a.callbackStatus,
        next_attempt_at: a.nextAttemptAt?.toISOString() ?? null,
      }));
      const moved = await sql.query<{ id: string }>(RECORD_ATTEMPTS, [json(rows)]);
      return new Set(moved.map((row) => row.id));
    },

    /**
     * Sets each drifted tenant's counters from the table. The tenant row is locked first, then
     * counted in a new statement (a new snapshot): every transition that committed before is
     * counted, and a submit or claim still running waits for the lock and applies its change
     * after. A finish takes no lock: it writes its status and its pending change in one commit,
     * so the counting statement sees both (and deletes the change) or neither (the change stays).
     */
    async reconcileCounters(): Promise<{ tenantId: string; queued: number; running: number; wasQueued: number; wasRunning: number }[]> {
      const drifted = await sql.query<{ id: string }>(COUNTER_DRIFT);
      const fixed = [];
      for (const { id } of drifted) {
        const change = await sql.transaction(async (tx) => {
          const [before] = await tx.query<{ queued_count: number; running_count: number }>(
            "SELECT queued_count, running_count FROM tenants WHERE id = $1 FOR UPDATE",
            [id],
          );
          // The tenant's pending changes are folded away too: the counts replace row and changes alike.
          const [after] = await tx.query<{ queued_count: number; running_count: number; fold_q: number; fold_r: number }>(
            `WITH folded AS (DELETE FROM tenant_counter_changes WHERE tenant_id = $1 RETURNING queued, running)
             UPDATE tenants SET
               queued_count = (SELECT count(*) FROM async_requests WHERE tenant_id = $1 AND status = 'QUEUED'),
               running_count = (SELECT count(*) FROM async_requests WHERE tenant_id = $1 AND status = 'RUNNING')
             WHERE id = $1 RETURNING queued_count, running_count,
               (SELECT coalesce(sum(queued), 0)::int FROM folded) AS fold_q, (SELECT coalesce(sum(running), 0)::int FROM folded) AS fold_r`,
            [id],
          );
          if (!before || !after) return undefined;
          return { before: { queued_count: before.queued_count + after.fold_q, running_count: before.running_count + after.fold_r }, after };
        });
        if (change && (change.before.queued_count !== change.after.queued_count || change.before.running_count !== change.after.running_count)) {
          fixed.push({
            tenantId: id,
            queued: change.after.queued_count,
            running: change.after.running_count,
            wasQueued: change.before.queued_count,
            wasRunning: change.before.running_count,
          });
        }
      }
      return fixed;
    },
  };
}

export type LifecycleStatements = ReturnType<typeof lifecycleStatements>;

export const keyOf = (clientId: string, key: string) => `${clientId}\n${key}`;

type RawRow = Record<string, unknown> & { id: string };

/** A raw async_requests row (snake_case, as the drivers return it) as the schema's row type. */
export function toRow(raw: RawRow): AsyncRequestRow {
  const row = toRowWithoutInput(raw) as AsyncRequestRow;
  row.input = raw.input;
  return row;
}

/** The same, for a row read without its input. */
function toRowWithoutInput(raw: RawRow): RequestWithoutInput {
  return {
    id: raw.id,
    tenantId: raw.tenant_id as string,
    createdBy: raw.created_by as string,
    action: raw.action as string,
    status: raw.status as AsyncRequestStatus,
    result: raw.result ?? null,
    errorCode: (raw.error_code as string | null) ?? null,
    errorDesc: (raw.error_desc as string | null) ?? null,
    errorDetails: (raw.error_details as unknown[]) ?? [],
    warnings: (raw.warnings as unknown[]) ?? [],
    metadata: (raw.metadata as Record<string, unknown> | null) ?? null,
    callbackUrl: (raw.callback_url as string | null) ?? null,
    progress: (raw.progress as number | null) ?? null,
    runs: raw.runs as number,
    createdAt: raw.created_at as Date,
    startedAt: (raw.started_at as Date | null) ?? null,
    finishedAt: (raw.finished_at as Date | null) ?? null,
    updatedAt: raw.updated_at as Date,
    callbackStatus: (raw.callback_status as CallbackStatus | null) ?? null,
    callbackSeries: raw.callback_series as number,
    callbackAttempts: raw.callback_attempts as number,
    callbackLastStatusCode: (raw.callback_last_status_code as number | null) ?? null,
    callbackLastError: (raw.callback_last_error as string | null) ?? null,
    callbackLastAttemptAt: (raw.callback_last_attempt_at as Date | null) ?? null,
    callbackNextAttemptAt: (raw.callback_next_attempt_at as Date | null) ?? null,
    callbackUpdatedAt: (raw.callback_updated_at as Date | null) ?? null,
  };
}

/** The row a submit writes, as the database will hold it, so the 202 needs no read-back. */
export function newRequestRow(request: NewRequest): AsyncRequestRow {
  // Spelled out rather than spread: this runs once per submit, and a literal keeps one shape.
  return {
    id: request.id,
    tenantId: request.tenantId,
    createdBy: request.createdBy,
    action: request.action,
    status: "QUEUED",
    input: request.input ?? null,
    result: null,
    errorCode: null,
    errorDesc: null,
    errorDetails: [],
    warnings: [],
    metadata: request.metadata,
    callbackUrl: request.callbackUrl,
    progress: null,
    runs: 0,
    createdAt: request.createdAt,
    startedAt: null,
    finishedAt: null,
    updatedAt: request.createdAt,
    callbackStatus: null,
    callbackSeries: 0,
    callbackAttempts: 0,
    callbackLastStatusCode: null,
    callbackLastError: null,
    callbackLastAttemptAt: null,
    callbackNextAttemptAt: null,
    callbackUpdatedAt: null,
  };
}
