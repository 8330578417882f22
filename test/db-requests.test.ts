import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getTableColumns } from "drizzle-orm";
import { openDatabase, type Database } from "../src/db/client.js";
import { lifecycleStatements } from "../src/db/lifecycle.js";
import { retentionStatements } from "../src/db/retention.js";
import { requestsRepository, type RequestsRepository } from "../src/db/requests.js";
import { asyncRequests, tenants } from "../src/db/schema.js";
import { tenantsRepository } from "../src/db/tenants.js";
import { createTestDatabase, DB_KINDS, type TestDatabase } from "./helpers/db.js";

describe.each(DB_KINDS)("requests repository on %s", (kind) => {
  let db: TestDatabase;
  let repo: RequestsRepository;
  const base = new Date("2026-01-01T00:00:00.000Z");
  const at = (seconds: number) => new Date(base.getTime() + seconds * 1000);

  const insert = (fields: { tenantId?: string; action?: string; createdAt: Date; status?: "QUEUED" | "COMPLETED" }) =>
    repo.insert({
      id: randomUUID(),
      tenantId: fields.tenantId ?? "default",
      createdBy: "tester",
      action: fields.action ?? "echo",
      status: fields.status ?? "QUEUED",
      input: { n: 1 },
      createdAt: fields.createdAt,
      updatedAt: fields.createdAt,
    });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    repo = requestsRepository(db.db);
    await db.db.insert(tenants).values({ id: "other", name: "Other tenant" });
  });
  afterAll(() => db.drop());

  it("migrations seed the default tenant and are idempotent", async () => {
    await db.migrate();
    const rows = await db.db.select().from(tenants);
    expect(rows.map((t) => t.id).sort()).toEqual(["default", "other"]);
  });

  it("stores and reads a request, scoped by tenant", async () => {
    const row = await insert({ createdAt: at(1) });
    expect(await repo.get("default", row.id)).toMatchObject({ id: row.id, status: "QUEUED", input: { n: 1 }, errorDetails: [], warnings: [], runs: 0 });
    expect(await repo.get("other", row.id)).toBeUndefined();
  });

  it("allows only the transitions of the state machine, and the tenant counters follow each one", async () => {
    const statements = lifecycleStatements(db.sql);
    // The counters as the service reads them: the tenant row plus the changes not yet folded in.
    const counters = async () => {
      const row = await tenantsRepository(db.db).get("other");
      return row && { queued: row.queuedCount, running: row.runningCount };
    };
    const id = randomUUID();
    const inserted = await statements.insertWithinLimits(
      statements.sql,
      [{ id, tenantId: "other", createdBy: "tester", action: "echo", input: { n: 1 }, metadata: null, callbackUrl: null, createdAt: at(2) }],
      10,
    );
    expect([...inserted]).toEqual([id]);
    expect(await counters()).toEqual({ queued: 1, running: 0 });
    expect(await statements.finish(id, "COMPLETED", at(3), {})).toBeUndefined(); // QUEUED cannot complete
    const running = await statements.claim(id, 10, at(3));
    expect(running).toMatchObject({ kind: "claimed", row: { status: "RUNNING", runs: 1, startedAt: at(3), input: { n: 1 } } });
    expect(await counters()).toEqual({ queued: 0, running: 1 });
    const again = await statements.claim(id, 10, at(4)); // a recovered re-run keeps its slot
    expect(again).toMatchObject({ kind: "claimed", row: { runs: 2 } });
    expect(await counters()).toEqual({ queued: 0, running: 1 });
    const done = await statements.finish(id, "COMPLETED", at(5), { result: { ok: true }, progress: 100 });
    expect(done).toMatchObject({ status: "COMPLETED", finishedAt: at(5), result: { ok: true }, progress: 100, priorStatus: "RUNNING" });
    expect(await counters()).toEqual({ queued: 0, running: 0 });
    expect(await statements.finish(id, "CANCELLED", at(6), {})).toBeUndefined();
    expect(await statements.claim(id, 10, at(6))).toEqual({ kind: "gone" });
    expect(await counters()).toEqual({ queued: 0, running: 0 });
  });

  it("a finish appends its counter change without touching the tenant row; the next claim or submit folds it in", async () => {
    const statements = lifecycleStatements(db.sql);
    await db.db.insert(tenants).values({ id: "folding", name: "Folding tenant" });
    const rowCounts = async () =>
      (await db.sql.query<{ queued_count: number; running_count: number; changes: number }>(
        "SELECT queued_count, running_count, (SELECT count(*)::int FROM tenant_counter_changes WHERE tenant_id = $1) AS changes FROM tenants WHERE id = $1",
        ["folding"],
      ))[0];
    const counted = async () => {
      const row = await tenantsRepository(db.db).get("folding");
      return row && { queued: row.queuedCount, running: row.runningCount };
    };
    const request = (id: string) => ({ id, tenantId: "folding", createdBy: "tester", action: "echo", input: null, metadata: null, callbackUrl: null, createdAt: at(20) });
    const [a, b, c, d, e, f] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await statements.insertWithinLimits(statements.sql, [a, b, c, e].map(request), 10);
    await statements.claim(a, 10, at(21));
    await statements.claim(b, 10, at(21));
    expect(await rowCounts()).toEqual({ queued_count: 2, running_count: 2, changes: 0 });

    // A running request completes and a queued one is cancelled: the row stays, two changes wait.
    await statements.finish(a, "COMPLETED", at(22), {});
    await statements.finish(c, "CANCELLED", at(22), {});
    expect(await rowCounts()).toEqual({ queued_count: 2, running_count: 2, changes: 2 });
    expect(await counted()).toEqual({ queued: 1, running: 1 });
    // The claim folds them: with a running limit of 2, the row alone (2 running) would refuse it.
    expect(await statements.claim(e, 2, at(23))).toMatchObject({ kind: "claimed" });
    expect(await rowCounts()).toEqual({ queued_count: 0, running_count: 2, changes: 0 });

    // The submit folds them too, and counts them against the queued limit.
    await statements.finish(b, "FAILED", at(24), {});
    await statements.insertWithinLimits(statements.sql, [request(d)], 10);
    expect(await rowCounts()).toEqual({ queued_count: 1, running_count: 1, changes: 0 });
    await statements.finish(d, "CANCELLED", at(25), {});
    expect(await rowCounts()).toEqual({ queued_count: 1, running_count: 1, changes: 1 });
    // A queued limit of 1: the row alone (1 queued) would refuse it, the pending change frees it.
    expect([...(await statements.insertWithinLimits(statements.sql, [request(f)], 1))]).toEqual([f]);
    expect(await rowCounts()).toEqual({ queued_count: 1, running_count: 1, changes: 0 });
    expect(await counted()).toEqual({ queued: 1, running: 1 });
    // Taking back a request that could not be enqueued lowers the count the same way.
    const g = randomUUID();
    await statements.insertWithinLimits(statements.sql, [request(g)], 10);
    expect([...(await statements.discard([g], []))]).toEqual([g]);
    expect(await rowCounts()).toEqual({ queued_count: 2, running_count: 1, changes: 1 });
    expect(await counted()).toEqual({ queued: 1, running: 1 });
    // Row plus changes agree with the table (other tenants here were written around the counters).
    expect((await statements.reconcileCounters()).filter((fixed) => fixed.tenantId === "folding")).toEqual([]);
  });

  if (kind === "postgres") {
    it("a finish does not wait for the tenant's lock, which claims and submits hold until they commit", async () => {
      const statements = lifecycleStatements(db.sql);
      await db.db.insert(tenants).values({ id: "locked", name: "Locked tenant" });
      const id = randomUUID();
      await statements.insertWithinLimits(statements.sql, [{ id, tenantId: "locked", createdBy: "tester", action: "echo", input: null, metadata: null, callbackUrl: null, createdAt: at(30) }], 10);
      await statements.claim(id, 10, at(30));
      // Another transaction holds the tenant row (as a claim or submit does until its commit);
      // the finish runs meanwhile on a connection of its own that gives up on any lock after 2 s.
      const own = new pg.Client({ connectionString: db.url });
      await own.connect();
      try {
        await own.query("SET lock_timeout = '2s'");
        const onOwn = lifecycleStatements({
          query: async (text, params) => (await own.query(text, params)).rows,
          transaction: () => Promise.reject(new Error("not used here")),
        });
        const finished = await db.sql.transaction(async (tx) => {
          await tx.query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", ["locked"]);
          return onOwn.finish(id, "COMPLETED", at(31), {}); // waiting for the lock: "canceling statement due to lock timeout"
        });
        expect(finished).toMatchObject({ status: "COMPLETED", priorStatus: "RUNNING" });
      } finally {
        await own.end();
      }
      const row = await tenantsRepository(db.db).get("locked");
      expect({ queued: row?.queuedCount, running: row?.runningCount }).toEqual({ queued: 0, running: 0 });
    });
  }

  it("finishes a batch with each row's own values: result, errors, progress, and SQL NULL where none was given", async () => {
    const statements = lifecycleStatements(db.sql);
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await statements.insertWithinLimits(
      statements.sql,
      ids.map((id) => ({ id, tenantId: "other", createdBy: "tester", action: "echo", input: null, metadata: null, callbackUrl: null, createdAt: at(9) })),
      10,
    );
    for (const id of ids) await statements.claim(id, 10, at(9));
    await statements.setProgress(ids[2]!, 40, at(9));
    const done = await statements.finishMany([
      { id: ids[0]!, to: "COMPLETED", at: at(10), fields: { result: { n: [1, 2] }, progress: 100 } },
      { id: ids[1]!, to: "FAILED", at: at(11), fields: { errorCode: "E1", errorDesc: "it broke", errorDetails: [{ path: "x" }] } },
      // Written in capitals (as a client may type it in a URL): the same request.
      { id: ids[2]!.toUpperCase(), to: "CANCELLED", at: at(12), fields: {} },
    ]);
    expect(done.get(ids[0]!)).toMatchObject({ status: "COMPLETED", finishedAt: at(10), updatedAt: at(10), result: { n: [1, 2] }, errorCode: null, errorDetails: [], progress: 100, priorStatus: "RUNNING" });
    expect(done.get(ids[1]!)).toMatchObject({ status: "FAILED", finishedAt: at(11), result: null, errorCode: "E1", errorDesc: "it broke", errorDetails: [{ path: "x" }], progress: null });
    expect(done.get(ids[2]!)).toMatchObject({ status: "CANCELLED", finishedAt: at(12), result: null, errorCode: null, errorDesc: null, errorDetails: [], progress: 40 });
    // Nothing given is SQL NULL, not a JSON null.
    const nulls = await db.sql.query<{ id: string; result_is_null: boolean }>(
      "SELECT id, result IS NULL AS result_is_null FROM async_requests WHERE id = ANY ($1::uuid[]) ORDER BY id",
      [ids],
    );
    expect(Object.fromEntries(nulls.map((row) => [row.id, row.result_is_null]))).toEqual({ [ids[0]!]: false, [ids[1]!]: true, [ids[2]!]: true });
  });

  it("brings back every column but the input after the run: the finish and the callback's read", async () => {
    // The input can be as large as the body limit and is read only to run the request. What the
    // database sends back is recorded on its way through (the statements run on the real driver).
    const received: Record<string, unknown>[] = [];
    const recording = {
      ...db.sql,
      query: async <T,>(text: string, params?: unknown[]) => {
        const rows = await db.sql.query<T>(text, params);
        received.push(...(rows as Record<string, unknown>[]));
        return rows;
      },
    };
    const statements = lifecycleStatements(recording);
    const id = randomUUID();
    await statements.insertWithinLimits(statements.sql, [{ id, tenantId: "other", createdBy: "tester", action: "echo", input: { big: "x".repeat(1000) }, metadata: null, callbackUrl: "http://127.0.0.1:9/hook", createdAt: at(7) }], 10);
    const claimed = await statements.claim(id, 10, at(7));
    expect(claimed).toMatchObject({ kind: "claimed", row: { input: { big: "x".repeat(1000) } } });
    const withoutInput = Object.values(getTableColumns(asyncRequests)).map((column) => column.name).filter((name) => name !== "input").sort();

    received.length = 0;
    const done = await statements.finish(id, "COMPLETED", at(8), { result: { ok: true } });
    expect(done).toMatchObject({ status: "COMPLETED", result: { ok: true }, callbackStatus: "PENDING", priorStatus: "RUNNING" });
    expect(received).toHaveLength(1);
    expect(Object.keys(received[0]!).sort()).toEqual([...withoutInput, "prior_status"].sort());

    received.length = 0;
    const read = (await statements.getManyWithoutInput([id])).get(id);
    expect(read).toMatchObject({ status: "COMPLETED", result: { ok: true }, callbackStatus: "PENDING" });
    expect(received).toHaveLength(1);
    expect(Object.keys(received[0]!).sort()).toEqual(withoutInput);
  });

  it("lists newest first with every filter", async () => {
    const t = await createTestDatabase(kind);
    try {
      const r = requestsRepository(t.db);
      await t.db.insert(tenants).values({ id: "other", name: "Other" });
      const make = (i: number, action: string, status: "QUEUED" | "COMPLETED", tenantId = "default") =>
        r.insert({ id: randomUUID(), tenantId, createdBy: "c", action, status, input: {}, createdAt: at(i), updatedAt: at(i) });
      const a = await make(10, "echo", "QUEUED");
      const b = await make(20, "analyse", "COMPLETED");
      const c = await make(30, "echo", "COMPLETED");
      await make(40, "echo", "COMPLETED", "other");
      const ids = (rows: { id: string }[]) => rows.map((row) => row.id);
      expect(ids(await r.list({ tenantId: "default", limit: 10 }))).toEqual([c.id, b.id, a.id]);
      expect(ids(await r.list({ tenantId: "default", status: ["COMPLETED"], limit: 10 }))).toEqual([c.id, b.id]);
      expect(ids(await r.list({ tenantId: "default", status: ["QUEUED", "COMPLETED"], action: ["echo"], limit: 10 }))).toEqual([c.id, a.id]);
      expect(ids(await r.list({ tenantId: "default", from: at(20), limit: 10 }))).toEqual([c.id, b.id]);
      expect(ids(await r.list({ tenantId: "default", to: at(20), limit: 10 }))).toEqual([a.id]);
      expect(ids(await r.list({ tenantId: "default", from: at(15), to: at(25), limit: 10 }))).toEqual([b.id]);
      expect(ids(await r.list({ tenantId: "default", after: { createdAt: c.createdAt, id: c.id }, limit: 10 }))).toEqual([b.id, a.id]);
      expect(await r.list({ tenantId: "nobody", limit: 10 })).toEqual([]);
    } finally {
      await t.drop();
    }
  });

  it("pages with a keyset cursor without duplicates or gaps while rows are inserted", async () => {
    const t = await createTestDatabase(kind);
    try {
      const r = requestsRepository(t.db);
      const same = at(100); // many rows share a millisecond: the id breaks the tie
      const original = [];
      for (let i = 0; i < 57; i++) {
        original.push(await r.insert({ id: randomUUID(), tenantId: "default", createdBy: "c", action: "echo", status: "QUEUED", input: {}, createdAt: i % 3 ? same : at(100 + i), updatedAt: same }));
      }
      const seen: string[] = [];
      let after: { createdAt: Date; id: string } | undefined;
      let inserted = 0;
      for (;;) {
        const page = await r.list({ tenantId: "default", after, limit: 10 });
        seen.push(...page.map((row) => row.id));
        // New requests arrive between pages; they are newer than the cursor and must not appear.
        for (let k = 0; k < 3; k++, inserted++) {
          await r.insert({ id: randomUUID(), tenantId: "default", createdBy: "c", action: "echo", status: "QUEUED", input: {}, createdAt: at(10_000 + inserted), updatedAt: same });
        }
        if (page.length < 10) break;
        const last = page.at(-1)!;
        after = { createdAt: last.createdAt, id: last.id };
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(original.map((row) => row.id).sort());
    } finally {
      await t.drop();
    }
  });

  it("finds unfinished requests not touched since a time, in pages", async () => {
    const t = await createTestDatabase(kind);
    try {
      const r = requestsRepository(t.db);
      const stale = [];
      for (let i = 0; i < 5; i++) {
        stale.push(await r.insert({ id: randomUUID(), tenantId: "default", createdBy: "c", action: "echo", status: "QUEUED", input: {}, createdAt: at(i), updatedAt: at(i) }));
      }
      await r.insert({ id: randomUUID(), tenantId: "default", createdBy: "c", action: "echo", status: "QUEUED", input: {}, createdAt: at(500), updatedAt: at(500) });
      await r.insert({ id: randomUUID(), tenantId: "default", createdBy: "c", action: "echo", status: "COMPLETED", input: {}, createdAt: at(1), updatedAt: at(1) });
      const first = await r.findUnfinishedSince("QUEUED", at(100), undefined, 3);
      const last = first.at(-1)!;
      const second = await r.findUnfinishedSince("QUEUED", at(100), { updatedAt: last.updatedAt, id: last.id }, 3);
      expect([...first, ...second].map((row) => row.id)).toEqual(stale.map((row) => row.id));
    } finally {
      await t.drop();
    }
  });
});

describe("PostgreSQL connections", () => {
  // The hot statements are prepared once per connection (named statements), so PostgreSQL keeps
  // one generic plan for each instead of planning every run. That plan is made once, perhaps on
  // empty tables, and kept while they grow: it must reach the big tables only through index
  // conditions (a probe per key of the batch), never a sequential scan or a whole-index scan.
  const BIG_TABLES = new Set(["async_requests", "callback_attempts", "idempotency_keys", "tenants", "tenant_counter_changes"]);
  type PlanNode = { "Node Type": string; "Relation Name"?: string; "Index Name"?: string; "Index Cond"?: string; Plans?: PlanNode[] };
  /** Each index's first column, read from the database (so a new index is checked too). */
  const leadingColumns = async (db: Database): Promise<Map<string, string>> => {
    const rows = await db.sql.query<{ index: string; column: string }>(
      `SELECT i.relname AS index, a.attname AS column FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
       JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = 'public'`,
    );
    return new Map(rows.map((row) => [row.index, row.column]));
  };
  const scansWithoutKeys = (node: PlanNode, leadingColumn: Map<string, string>, out: string[] = []): string[] => {
    const type = node["Node Type"];
    if (type === "Seq Scan" && BIG_TABLES.has(node["Relation Name"] ?? "")) out.push(`Seq Scan on ${node["Relation Name"]}`);
    // A bitmap scan marks no dead index entry (rows that churn are read again until VACUUM) and
    // loses the index's order (a LIMIT over a range sorts the whole range first).
    if (type === "Bitmap Heap Scan" && BIG_TABLES.has(node["Relation Name"] ?? "")) out.push(`Bitmap Heap Scan on ${node["Relation Name"]}`);
    if (["Index Scan", "Index Only Scan", "Bitmap Index Scan"].includes(type) && !node["Index Cond"]) out.push(`${type} on ${node["Index Name"]} without an index condition`);
    // A condition on status alone reads every row in that status (the partial index of unfinished
    // requests holds the whole backlog), however few keys the batch has.
    const columns = [...(node["Index Cond"] ?? "").matchAll(/\b([a-z_]+)\s*(?:=|<|>)/g)].map((match) => match[1]);
    if (columns.length > 0 && columns.every((column) => column === "status")) out.push(`${type} on ${node["Index Name"]} by status alone`);
    // A condition on a later column of an index (id in (tenant_id, created_at, id)) walks the whole index.
    const leading = node["Index Name"] ? leadingColumn.get(node["Index Name"]) : undefined;
    if (columns.length > 0 && leading && !columns.includes(leading)) out.push(`${type} on ${node["Index Name"]} without its leading column ${leading} (${node["Index Cond"]})`);
    for (const child of node.Plans ?? []) scansWithoutKeys(child, leadingColumn, out);
    return out;
  };

  /** A fresh PostgreSQL database and a pool of one connection (every statement is prepared on it). */
  const withOneConnection = async (work: (db: Database) => Promise<void>) => {
    const t = await createTestDatabase("postgres");
    const db = await openDatabase({ databaseUrl: t.url!, dataDir: "unused", poolSize: 1 });
    try {
      await work(db);
    } finally {
      await db.close();
      await t.drop();
    }
  };

  type PlanStats = PlanNode & { "Actual Rows"?: number; "Rows Removed by Filter"?: number };
  /** Runs a page's query under EXPLAIN ANALYZE; its plan's node types and its scan of `index`. */
  const pagePlan = async (db: Database, query: { sql: string; params: unknown[] }, index: string) => {
    const [row] = await db.sql.query<{ "QUERY PLAN": [{ Plan: PlanStats }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${query.sql}`, query.params);
    const nodes: PlanStats[] = [];
    const walk = (node: PlanStats) => (nodes.push(node), (node.Plans ?? []).forEach(walk));
    walk(row!["QUERY PLAN"][0].Plan);
    return { types: nodes.map((node) => node["Node Type"]), scan: nodes.find((node) => node["Index Name"] === index) };
  };

  it("read a page of a tenant's list from the index where its cursor points, never the tenant's every row", () =>
    withOneConnection(async (db) => {
      await db.sql.query("INSERT INTO tenants (id, name) VALUES ('big', 'big'), ('other', 'other')");
      await db.sql.query(`
        INSERT INTO async_requests (id, tenant_id, created_by, action, status, input, created_at, updated_at)
        SELECT gen_random_uuid(), CASE WHEN g % 4 = 0 THEN 'big' ELSE 'other' END, 'c', 'echo', 'COMPLETED', '{}'::jsonb,
          timestamptz '2026-01-01' + (g || ' ms')::interval, timestamptz '2026-01-01' + (g || ' ms')::interval
        FROM generate_series(1, 20000) g`);
      await db.sql.query("ANALYZE async_requests");
      const repo = requestsRepository(db.db);
      const [cursorRow] = await db.sql.query<{ created_at: Date; id: string }>(
        "SELECT created_at, id FROM async_requests WHERE tenant_id = 'big' ORDER BY created_at DESC, id DESC OFFSET 3000 LIMIT 1",
      );
      // The first page starts at the tenant's newest row; a later one at its cursor, which is part
      // of the index condition: either way the scan reads one page.
      const pages = [
        { after: undefined, indexCond: /^\(tenant_id = 'big'::text\)$/ },
        { after: { createdAt: cursorRow!.created_at, id: cursorRow!.id }, indexCond: /ROW\(created_at, id\) </ },
      ];
      for (const { after, indexCond } of pages) {
        const { types, scan } = await pagePlan(db, repo.listQuery({ tenantId: "big", limit: 50, after }).toSQL(), "async_requests_tenant_created_idx");
        expect(types, JSON.stringify(after)).not.toContain("Sort");
        expect(scan?.["Node Type"]).toBe("Index Scan");
        expect(scan?.["Index Cond"]).toMatch(indexCond);
        expect(scan?.["Actual Rows"]).toBe(50);
        expect(scan?.["Rows Removed by Filter"] ?? 0).toBe(0);
      }
      // The pages themselves: newest first, the second one starting right after the cursor.
      const page = await repo.list({ tenantId: "big", limit: 50, after: { createdAt: cursorRow!.created_at, id: cursorRow!.id } });
      expect(page).toHaveLength(50);
      expect(page[0]!.createdAt.getTime()).toBeLessThan(cursorRow!.created_at.getTime());
      expect(page.map((r) => r.createdAt.getTime())).toEqual(page.map((r) => r.createdAt.getTime()).sort((a, b) => b - a));
    }));

  it("read each page of the sweeper's backlog from the index where the last page ended, never the whole backlog", () =>
    withOneConnection(async (db) => {
      await db.sql.query(`
        INSERT INTO async_requests (id, tenant_id, created_by, action, status, input, created_at, updated_at)
        SELECT gen_random_uuid(), 'default', 'c', 'echo', CASE WHEN g % 2 = 0 THEN 'QUEUED' WHEN g % 5 = 1 THEN 'RUNNING' ELSE 'COMPLETED' END, '{}'::jsonb,
          timestamptz '2026-01-01' + (g / 3 || ' ms')::interval, timestamptz '2026-01-01' + (g / 3 || ' ms')::interval
        FROM generate_series(1, 20000) g`);
      await db.sql.query("ANALYZE async_requests");
      const repo = requestsRepository(db.db);
      const before = new Date("2026-02-01T00:00:00Z");
      const first = await repo.findUnfinishedSince("QUEUED", before, undefined, 200);
      const last = first.at(-1)!;
      // The first page starts at the oldest row; the next one where the last ended (the keyset is
      // part of the index condition): either way the scan reads one page.
      const pages = [
        { after: undefined, indexCond: /^\(\(status = 'QUEUED'::text\) AND \(updated_at < [^)]*\)\)$/ },
        { after: { updatedAt: last.updatedAt, id: last.id }, indexCond: /ROW\(updated_at, id\) >/ },
      ];
      for (const { after, indexCond } of pages) {
        const { types, scan } = await pagePlan(db, repo.unfinishedQuery("QUEUED", before, after, 200).toSQL(), "async_requests_unfinished_updated_idx");
        expect(types, JSON.stringify(after)).not.toContain("Sort");
        expect(scan?.["Node Type"]).toBe("Index Scan");
        expect(scan?.["Index Cond"]).toMatch(indexCond);
        expect(scan?.["Actual Rows"]).toBe(200);
        expect(scan?.["Rows Removed by Filter"] ?? 0).toBe(0);
      }
      // The second page continues the first: oldest first, ties broken by id, nothing twice.
      const second = await repo.findUnfinishedSince("QUEUED", before, { updatedAt: last.updatedAt, id: last.id }, 200);
      const key = (r: { updatedAt: Date; id: string }) => `${r.updatedAt.toISOString()} ${r.id}`;
      const keys = [...first, ...second].map(key);
      expect(keys).toEqual([...keys].sort());
      expect(new Set(keys).size).toBe(400);
      expect([...first, ...second].every((r) => r.status === "QUEUED")).toBe(true);
      expect((await repo.findUnfinishedSince("RUNNING", before, undefined, 200)).every((r) => r.status === "RUNNING")).toBe(true);
    }));

  it("fold a tenant's counter changes without reading again the ones folded before (dead index entries are marked, not re-read until VACUUM)", () =>
    withOneConnection(async (db) => {
      // Every finish appends a change and every submit or claim batch deletes its tenant's: the
      // index on tenant_id gains a dead entry per change. A plain index scan marks the entries it
      // finds dead, so the next fold skips them; a bitmap scan never does, and every fold would
      // read all the changes deleted since the last VACUUM (thousands a minute at 1,000/s).
      const statements = lifecycleStatements(db.sql);
      // An auto-ANALYZE holds a snapshot meanwhile, and no entry dead to it can be marked: keep
      // autovacuum off this database's tables for the test.
      for (const { table } of await db.sql.query<{ table: string }>("SELECT tablename AS table FROM pg_tables WHERE schemaname = 'public'")) {
        await db.sql.query(`ALTER TABLE "${table}" SET (autovacuum_enabled = false)`);
      }
      const fold = () =>
        statements.transaction(async (tx) => {
          await tx.query("INSERT INTO tenant_counter_changes (tenant_id, queued, running) VALUES ('default', 0, 0)");
          const now = new Date();
          await statements.insertWithinLimits(tx, [{ id: randomUUID(), tenantId: "default", createdBy: "tester", action: "echo", input: {}, metadata: null, callbackUrl: null, createdAt: now }], 1_000_000);
        });
      const indexReads = async () => {
        await db.sql.query("SELECT pg_stat_force_next_flush()");
        const [row] = await db.sql.query<{ scans: number; read: number }>(
          "SELECT idx_scan::int AS scans, idx_tup_read::int AS read FROM pg_stat_user_indexes WHERE indexrelname = 'tenant_counter_changes_tenant_idx'",
        );
        return row!;
      };
      for (let i = 0; i < 300; i++) await fold();
      const before = await indexReads();
      for (let i = 0; i < 50; i++) await fold();
      const after = await indexReads();
      expect(after.scans - before.scans).toBeGreaterThanOrEqual(50);
      // Each fold reads its own change and the last fold's (marked as it reads it), not the 300
      // before them (with bitmap scans: 325 per fold).
      expect((after.read - before.read) / (after.scans - before.scans)).toBeLessThan(20);
      expect(await db.sql.query("SELECT 1 FROM tenant_counter_changes")).toHaveLength(0);
    }));

  it("run each hot statement with one cached plan that reaches the big tables by key, also when made on empty tables", () =>
    withOneConnection(async (db) => {
      const statements = lifecycleStatements(db.sql);
      const retention = retentionStatements(db.sql);
      const key = { clientId: "tester", key: "k1" };
      const hook = "http://127.0.0.1:1/hook";
      // Each statement runs more than five times, after which PostgreSQL decides between re-planning and its generic plan.
      for (let run = 0; run < 7; run++) {
        const now = new Date();
        const id = randomUUID();
        await statements.transaction(async (tx) => {
          await statements.claimKeys(tx, [{ ...key, requestDigest: "d", asyncRequestId: id, responseStatus: 202, responseBody: {}, createdAt: now }], now);
          await statements.findKeys(tx, [key]);
          await statements.insertWithinLimits(tx, [{ id, tenantId: "default", createdBy: "tester", action: "echo", input: {}, metadata: null, callbackUrl: hook, createdAt: now }], 10);
        });
        expect((await statements.claimMany([id], 10, now)).get(id)?.kind).toBe("claimed");
        await statements.setProgress(id, 50, now);
        expect((await statements.finishMany([{ id, to: "COMPLETED", at: now, fields: { result: {} } }])).get(id)?.callbackStatus).toBe("PENDING");
        expect((await statements.getById(id))?.status).toBe("COMPLETED");
        expect((await statements.getManyWithoutInput([id])).get(id)?.status).toBe("COMPLETED");
        const attempt = { id: randomUUID(), requestId: id, series: 1, attempt: 1, webhookId: "msg", url: hook, startedAt: now, durationMs: 1 };
        const recorded = await statements.recordAttempts([
          { ...attempt, statusCode: 200, errorClass: null, errorMessage: null, responseBody: "", delivered: true, callbackStatus: "DELIVERED", nextAttemptAt: null },
        ]);
        expect(recorded.has(id)).toBe(true);
        await statements.discard([randomUUID()], []);
        await statements.transaction((tx) => statements.releaseKeys(tx, [key]));
        expect(await retention.purgeRequests(new Date(now.getTime() + 1), 10)).toBe(1);
        await retention.purgeIdempotencyKeys(new Date(0));
      }

      const prepared = await db.sql.query<{ name: string; statement: string; parameters: number; generic_plans: number; custom_plans: number }>(
        "SELECT name, statement, cardinality(parameter_types) AS parameters, generic_plans::int, custom_plans::int FROM pg_prepared_statements ORDER BY name",
      );
      expect(prepared.length).toBeGreaterThanOrEqual(13);
      for (const statement of prepared) {
        // Planned at most for its first five runs, then the cached plan, every run.
        expect(statement.custom_plans, statement.statement).toBeLessThanOrEqual(5);
        expect(statement.generic_plans, statement.statement).toBeGreaterThanOrEqual(2);
      }
      // The cached plan itself: made on these (nearly empty) tables.
      const leading = await leadingColumns(db);
      expect(leading.get("async_requests_tenant_created_idx")).toBe("tenant_id");
      expect(leading.get("async_requests_unfinished_updated_idx")).toBe("status");
      await db.sql.query("SET plan_cache_mode = force_generic_plan");
      for (const statement of prepared) {
        const nulls = Array(statement.parameters).fill("NULL").join(", ");
        const [row] = await db.sql.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) EXECUTE ${statement.name}(${nulls})`);
        const plan = row!["QUERY PLAN"][0].Plan;
        expect(scansWithoutKeys(plan, leading), statement.statement).toEqual([]);
      }
    }));
});
