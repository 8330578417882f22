/** Starts bench/receiver.ts in its own process and steers it over HTTP. */
import { join } from "node:path";
import { config } from "./config.js";
import { call, waitReady } from "./http.js";
import { freePort } from "./infra.js";
import { spawnTs, type Child } from "./procs.js";

export type ReceiverStats = {
  mode: string;
  ok: number;
  okDistinct: number;
  okBySeriesNumber: Record<string, number>;
  failed: number;
  exhausted: number;
  seriesSeen: number;
  secondAttempts: number;
  tracked: number;
  firstOkAt: number;
  lastOkAt: number;
  firstAt: number;
  lastAt: number;
};

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

export async function startReceiver() {
  const port = await freePort();
  const child: Child = spawnTs("receiver", join(config.benchDir, "receiver.ts"), [], { cwd: config.root, env: { ...process.env, PORT: String(port) } });
  const origin = `http://127.0.0.1:${port}`;
  await waitReady(`${origin}/_bench/stats`, child);
  return {
    child,
    origin,
    /** Where the services under test POST their callbacks. */
    hookUrl: `http://${config.callbackHost}:${port}/hook`,
    mode: (mode: "ok" | "fail" | "failFirst", options: { failAttempts?: number; track?: boolean } = {}) =>
      call<ReceiverStats>("POST", `${origin}/_bench/mode`, { body: { mode, track: false, ...options } }),
    reset: () => call<ReceiverStats>("POST", `${origin}/_bench/reset`, { body: {} }),
    stats: () => call<ReceiverStats>("GET", `${origin}/_bench/stats`),
    dump: () => call<{ latencies: number[]; secondAttemptAt: Record<string, number> }>("GET", `${origin}/_bench/dump`),
  };
}
