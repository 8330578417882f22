import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, submit, type AsyncRequestJson, type TestRuntime } from "./helpers/runtime.js";

type Page = { asyncRequests: AsyncRequestJson[]; nextCursor: string | null };

describe("GET /api/v1/async", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    // No worker: requests stay QUEUED unless a test cancels them, so statuses are known.
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
  });
  afterAll(() => rt.stop());

  const page = async (query: string): Promise<Page> => {
    const response = await rt.request(`/api/v1/async?${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Page;
  };

  it("filters by status, action and time, newest first", async () => {
    const start = new Date().toISOString();
    const echo = await submit(rt, { action: "echo", input: {} });
    const analyse = await submit(rt, { action: "analyse", input: { texts: ["a"] } });
    const cancelled = await submit(rt, { action: "echo", input: {} });
    await rt.request(`/api/v1/async/${cancelled.id}`, { method: "DELETE" });
    const ids = (p: Page) => p.asyncRequests.map((r) => r.id);

    expect(ids(await page(`from=${start}`))).toEqual([cancelled.id, analyse.id, echo.id]);
    expect(ids(await page(`from=${start}&status=CANCELLED`))).toEqual([cancelled.id]);
    expect(ids(await page(`from=${start}&status=QUEUED,CANCELLED&action=echo`))).toEqual([cancelled.id, echo.id]);
    expect(ids(await page(`from=${start}&status=QUEUED&status=CANCELLED&action=analyse`))).toEqual([analyse.id]);
    expect(ids(await page(`from=${start}&to=${analyse.dateCreated}`))).not.toContain(analyse.id);
    expect(ids(await page(`from=${analyse.dateCreated}&action=analyse`))).toEqual([analyse.id]);
    // A date is the start of that day in UTC; a date-time without an offset is UTC.
    const today = start.slice(0, 10);
    const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    expect(ids(await page(`from=${today}&to=${tomorrow}&action=analyse`))).toEqual([analyse.id]);
    expect(ids(await page(`to=${today}&action=analyse`))).toEqual([]);
    expect(ids(await page(`from=${String(analyse.dateCreated).replace("Z", "")}&action=analyse`))).toEqual([analyse.id]);
    expect(ids(await page(`from=${encodeURIComponent(String(analyse.dateCreated).replace("Z", "+00:00"))}&action=analyse`))).toEqual([analyse.id]);
  });

  it("pages through every row exactly once with the cursor while new rows arrive", async () => {
    const start = new Date().toISOString();
    const original: string[] = [];
    for (let i = 0; i < 25; i++) original.push((await submit(rt, { action: "echo", input: { data: i } })).id);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const current: Page = await page(`from=${start}&limit=4${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...current.asyncRequests.map((r) => r.id));
      cursor = current.nextCursor;
      pages++;
      await Promise.all([1, 2].map(() => submit(rt, { action: "echo", input: { data: "late" } })));
    } while (cursor);
    expect(pages).toBe(7);
    expect(seen).toEqual([...original].reverse());
  });

  it("defaults to 50 per page", async () => {
    for (let i = 0; i < 52; i++) await submit(rt, { action: "echo", input: {} });
    const first = await page("");
    expect(first.asyncRequests).toHaveLength(50);
    expect(first.nextCursor).toBeTruthy();
  });
});
