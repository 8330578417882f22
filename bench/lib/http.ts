/** The few HTTP calls the bench itself makes (setup, control, read-back), never under measurement. */
import { Agent, request } from "undici";
import type { Child } from "./procs.js";
import { sleep, tailOf } from "./procs.js";

// No timeouts: an admin redelivery of 50,000 callbacks may take a while to answer.
const agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, connections: 64 });

export async function call<T = unknown>(method: "GET" | "POST", url: string, options: { body?: unknown; form?: Record<string, string>; token?: string; expect?: number } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(options.form).toString();
  } else if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await request(url, { method, headers, body, dispatcher: agent });
  const text = await response.body.text();
  const expected = options.expect ?? (method === "POST" ? undefined : 200);
  if (expected !== undefined ? response.statusCode !== expected : response.statusCode >= 300) {
    throw new Error(`${method} ${url} answered ${response.statusCode}: ${text.slice(0, 300)}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Polls GET `url` until it answers 200; fails early, with its log, if `child` exits first. */
export async function waitReady(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${child.name} exited before it was ready; its log (${child.logFile}):\n${tailOf(child.logFile)}`);
    try {
      const response = await request(url, { dispatcher: agent });
      await response.body.dump();
      if (response.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${child.name} not ready at ${url} after ${timeoutMs / 1000} s; its log (${child.logFile}):\n${tailOf(child.logFile)}`);
    await sleep(100);
  }
}

/**
 * Polls `probe` every `everyMs` until `done(value)` or `timeoutMs`; returns the last value and
 * whether the condition was met, so a phase can report what it got instead of failing.
 */
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, everyMs = 100): Promise<{ value: T; met: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return { value, met: true };
    if (Date.now() >= deadline) return { value, met: false };
    await sleep(everyMs);
  }
}

/** Runs `work` over `items` with at most `concurrency` at once. */
export async function eachLimited<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}
