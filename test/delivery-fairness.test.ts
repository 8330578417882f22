import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotVerdict } from "../src/worker/deliver-callback.js";
import { createDeliverySlots, SlotRefused, type Slot } from "../src/worker/delivery-slots.js";
import { startReceiver, type Receiver } from "./helpers/receiver.js";
import { jsonBody, startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

describe("delivery slots", () => {
  it("cap each origin and hand freed slots to the next origin in turn", async () => {
    const slots = createDeliverySlots({ total: 3, perOrigin: 2 });
    const a1 = slots.tryAcquire("a")!;
    const a2 = slots.tryAcquire("a")!;
    expect(slots.tryAcquire("a")).toBeUndefined(); // a's cap
    const b1 = slots.tryAcquire("b")!;
    expect(slots.tryAcquire("c")).toBeUndefined(); // all 3 taken
    const order: string[] = [];
    const waits = ["a", "a", "b", "c"].map((origin) => slots.acquire(origin).then((release) => (order.push(origin), release)));
    a1(); // frees one of a's: the first waiter in turn is a (it waited first), then b, then c
    b1();
    a2();
    // The second "a" waiter is served last although it queued before "b" and "c".
    const released = await Promise.all([waits[0]!, waits[2]!, waits[3]!]);
    expect(order).toEqual(["a", "b", "c"]);
    for (const release of released) release();
    await waits[1];
    expect(order).toEqual(["a", "b", "c", "a"]);
    expect(slots.stats()).toEqual({ inFlight: 1, origins: 1, waiting: 0 });
  });

  it("let an origin earn slots by answering quickly under load, up to its ceiling, and halve on strain, never below its floor", () => {
    let clock = 0;
    const slots = createDeliverySlots({ total: 100, perOrigin: 2, perOriginMax: 8, slowMs: 1_000, now: () => clock });
    const answer = (origin: string, verdict?: "ok" | "strained", tookMs = 1) => {
      const slot = slots.tryAcquire(origin)!;
      clock += tookMs;
      slot(verdict);
    };
    /** Takes every slot the origin may have, then each answers quickly. */
    const round = (origin: string) => {
      const taken: Slot[] = [];
      for (let slot = slots.tryAcquire(origin); slot; slot = slots.tryAcquire(origin)) taken.push(slot);
      clock += 1;
      for (const slot of taken) slot("ok");
    };
    expect(slots.limitOf("a")).toBe(2); // never seen: it starts at the floor
    answer("a", "ok"); // 1 in flight of 2: half its limit in use, so it earns one
    expect(slots.limitOf("a")).toBe(3);
    for (let i = 0; i < 5; i++) answer("a", "ok"); // 1 in flight of 3: it earns nothing more
    expect(slots.limitOf("a")).toBe(3);
    round("a"); // 3 in flight: while at least half of them are, each answer earns one
    expect(slots.limitOf("a")).toBe(5);
    round("a");
    expect(slots.limitOf("a")).toBe(7);
    round("a");
    expect(slots.limitOf("a")).toBe(8); // the ceiling
    const held = Array.from({ length: 8 }, () => slots.tryAcquire("a")!);
    expect(slots.tryAcquire("a")).toBeUndefined(); // 8 in flight: no 9th
    expect(slots.limitOf("b")).toBe(2); // another origin earned nothing

    held.pop()!("strained"); // a timeout, a refused connection, 429 or 502–504
    expect(slots.limitOf("a")).toBe(4);
    held.pop()!(); // given back without an attempt (no verdict): no change
    expect(slots.limitOf("a")).toBe(4);
    held.pop()!("strained");
    expect(slots.limitOf("a")).toBe(2); // the floor
    // 5 still in flight, over the new limit of 2: no new slot until four of them end.
    expect(slots.tryAcquire("a")).toBeUndefined();
    for (const slot of held.splice(0)) slot(); // ended without an answer
    round("a");
    expect(slots.limitOf("a")).toBe(3);
    answer("a", "ok", 1_001); // a 200, but slower than slowMs: strain all the same
    expect(slots.limitOf("a")).toBe(2);
    const slot = slots.tryAcquire("a")!;
    clock += 5_000;
    slot("ok", 3); // judged by the receiver's own answer time when given, not the slot's
    expect(slots.limitOf("a")).toBe(3);
  });

  it("tell how long a new attempt would wait, from how long the origin's answers take and its limit", async () => {
    let clock = 0;
    const slots = createDeliverySlots({ total: 100, perOrigin: 2, perOriginMax: 2, now: () => clock });
    expect(slots.expectedWaitMs("a")).toBeUndefined(); // no answer yet: nothing known
    const answer = (tookMs: number) => {
      const slot = slots.tryAcquire("a")!;
      clock += tookMs;
      slot("ok");
    };
    answer(10);
    expect(slots.expectedWaitMs("a")).toBe(0); // a slot is free
    answer(20); // the moving average: 10 × 0.8 + 20 × 0.2 = 12 ms
    const held = [slots.tryAcquire("a")!, slots.tryAcquire("a")!];
    expect(slots.expectedWaitMs("a")).toBe(6); // both slots busy: one answer of 12 ms, shared by 2 slots
    const waiters = [slots.acquire("a"), slots.acquire("a"), slots.acquire("a")];
    expect(slots.expectedWaitMs("a")).toBe(24); // behind 3 waiters: (3 + 1) × 12 / 2
    clock += 100; // the attempts in flight have been silent for 100 ms, far over its 12 ms
    expect(slots.expectedWaitMs("a")).toBe(200); // judged by that silence: (3 + 1) × 100 / 2
    for (const slot of held) slot();
    for (const slot of await Promise.all(waiters.slice(0, 2))) slot();
    for (const slot of await Promise.all(waiters.slice(2))) slot();
    expect(slots.expectedWaitMs("a")).toBe(0);
  });

  it("count the attempts in flight beyond a limit that shrank as ahead of a new one", () => {
    let clock = 0;
    const slots = createDeliverySlots({ total: 100, perOrigin: 2, perOriginMax: 8, now: () => clock });
    const held: Slot[] = [];
    for (let limit = 2; limit < 8; limit = slots.limitOf("a")) {
      const taken: Slot[] = [];
      for (let slot = slots.tryAcquire("a"); slot; slot = slots.tryAcquire("a")) taken.push(slot);
      clock += 10;
      for (const slot of taken) slot("ok");
    }
    for (let i = 0; i < 8; i++) held.push(slots.tryAcquire("a")!);
    held.pop()!("strained", 10); // limit 4, 7 in flight
    held.pop()!("strained", 10); // limit 2, 6 in flight: 4 of them beyond it
    expect(slots.limitOf("a")).toBe(2);
    // (4 beyond the limit + 1) answers of 10 ms, over 2 slots.
    expect(slots.expectedWaitMs("a")).toBe(25);
    for (const slot of held) slot();
  });

  it("turn away, on strain, the waiters the origin's new limit would not reach soon enough; and all of them at shutdown", async () => {
    let clock = 0;
    const slots = createDeliverySlots({ total: 100, perOrigin: 2, perOriginMax: 2, shedAfterMs: 100, now: () => clock });
    const first = slots.tryAcquire("a")!;
    clock += 10;
    first("ok"); // it answers in 10 ms
    const held = [slots.tryAcquire("a")!, slots.tryAcquire("a")!];
    const outcomes: ("granted" | "refused")[] = [];
    const waiters = Array.from({ length: 30 }, (_, i) =>
      slots.acquire("a").then(
        (slot) => ((outcomes[i] = "granted"), slot),
        (error: unknown) => {
          expect(error).toBeInstanceOf(SlotRefused);
          outcomes[i] = "refused";
          return undefined;
        },
      ),
    );
    clock += 50;
    held.pop()!("strained", 50); // a 503 after 50 ms: its answers now average 18 ms
    // Its 2 slots serve 100 ms / 18 ms × 2 = 11 waiters within 100 ms: the other 19, the last to
    // come, are turned away (their jobs go back to the queue); one of the 11 has the freed slot.
    await Promise.all(waiters.slice(11));
    expect(outcomes.slice(11)).toEqual(Array(19).fill("refused"));
    expect(await waiters[0]).toBeDefined();
    expect(slots.waitingFor("a")).toBe(10);
    slots.refuseAll(); // shutdown
    await Promise.all(waiters);
    expect(outcomes.filter((o) => o === "refused")).toHaveLength(29);
    expect(slots.stats()).toEqual({ inFlight: 2, origins: 1, waiting: 0 });
  });

  it("wake a waiter of an origin whose limit grew", async () => {
    const slots = createDeliverySlots({ total: 10, perOrigin: 1, perOriginMax: 3 });
    const first = slots.tryAcquire("a")!;
    const second = slots.acquire("a"); // waits: the limit is 1
    const third = slots.acquire("a");
    first("ok"); // the limit is now 2: both waiters may go
    await Promise.all([second, third]);
    expect(slots.stats()).toEqual({ inFlight: 2, origins: 1, waiting: 0 });
  });

  it("judge an attempt by its answer: 429, 502–504 and failed connections are strain; a blocked address is no attempt", () => {
    expect(slotVerdict(200, null)).toBe("ok");
    expect(slotVerdict(404, "http_status")).toBe("ok"); // a quick refusal is no sign of overload
    expect(slotVerdict(500, "http_status")).toBe("ok"); // nor is a quick error
    for (const status of [429, 502, 503, 504]) expect(slotVerdict(status, "http_status")).toBe("strained");
    for (const errorClass of ["timeout", "connection_refused", "connection_reset", "dns_failure", "tls_error", "network_error"]) {
      expect(slotVerdict(null, errorClass)).toBe("strained");
    }
    expect(slotVerdict(null, "blocked_address")).toBeUndefined();
    expect(slotVerdict(null, "invalid_url")).toBeUndefined();
  });
});

/** A receiver that never answers, counting the connections it holds. */
async function startHangingReceiver() {
  let open = 0;
  let peak = 0;
  let firstEndedAt: number | undefined;
  const server: Server = createServer((req, res) => {
    open++;
    peak = Math.max(peak, open);
    req.resume();
    res.on("close", () => {
      open--;
      firstEndedAt ??= performance.now();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hang`,
    get peak() {
      return peak;
    },
    get open() {
      return open;
    },
    get firstEndedAt() {
      return firstEndedAt;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("a hanging receiver does not hold up other receivers' callbacks", () => {
  let rt: TestRuntime;
  let hanging: Awaited<ReturnType<typeof startHangingReceiver>>;
  let healthy: Receiver;
  beforeAll(async () => {
    hanging = await startHangingReceiver();
    healthy = await startReceiver();
    rt = await startTestRuntime({
      env: {
        OUTBOUND_ALLOW: "127.0.0.1/32",
        WORKER_CONCURRENCY: "50",
        CALLBACK_CONCURRENCY: "12",
        CALLBACK_ORIGIN_CONCURRENCY: "3",
        CALLBACK_TIMEOUT: "10s",
        CALLBACK_RETRY_DELAYS: "1h",
      },
    });
  });
  afterAll(async () => {
    await hanging.close(); // first: its held connections end, so the worker's shutdown need not wait for their timeout
    await rt.stop();
    await healthy.close();
  });

  it("holds at most its origin's share of the slots; the healthy receiver gets every callback meanwhile", async () => {
    const post = (callbackUrl: string) => rt.request("/api/v1/async", jsonBody({ action: "echo", input: {}, callbackUrl })).then((r) => expect(r.status).toBe(202));
    await Promise.all(Array.from({ length: 60 }, () => post(hanging.url)));
    // Wait until the hanging receiver holds what it may (its queued callbacks are all fetched by now or soon).
    while (hanging.open < 3) await new Promise((resolve) => setImmediate(resolve));
    const started = performance.now();
    await Promise.all(Array.from({ length: 30 }, () => post(healthy.url("/ok"))));
    await healthy.waitFor("/ok", 30, 10_000);
    const doneAt = performance.now();
    // Every healthy callback arrived while the hanging ones still hung: none had to wait for a
    // timeout to free a slot (with first come, first served, all 12 slots would be hanging).
    expect(hanging.firstEndedAt === undefined || hanging.firstEndedAt > doneAt).toBe(true);
    expect(doneAt - started).toBeLessThan(10_000);
    expect(hanging.peak).toBeLessThanOrEqual(3);
  });
});
