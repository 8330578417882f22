/**
 * Closed-loop load, run as its own process: autocannon (each connection sends its next request
 * when the previous answer is in), driven through its API rather than its CLI so that SIGTERM
 * stops it gracefully and it still prints its figures, which a phase that gives up waiting on a
 * slow service needs (how many submits were accepted).
 *
 * argv[2]: JSON {url, headers, body, connections, seconds?, amount?, timeoutSeconds}; `url` may be a
 * list (several API processes): autocannon then opens connection i to url[i % n].
 * Prints autocannon's result object as one JSON line.
 */
import { createRequire } from "node:module";

type Spec = { url: string | string[]; headers: Record<string, string>; body: string; connections: number; seconds?: number; amount?: number; timeoutSeconds: number };
type Instance = { stop(): void };
type Autocannon = (options: Record<string, unknown>, done: (error: Error | null, result: unknown) => void) => Instance;

// autocannon is CommonJS without bundled types; only this call of it is needed.
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const spec = JSON.parse(process.argv[2] ?? "{}") as Spec;
if ([spec.url].flat().some((url) => new URL(url).hostname !== "127.0.0.1")) throw new Error("the bench only sends load to 127.0.0.1");

const instance = autocannon(
  {
    url: spec.url,
    method: "POST",
    headers: spec.headers,
    body: spec.body,
    connections: spec.connections,
    timeout: spec.timeoutSeconds,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.seconds }),
  },
  (error, result) => {
    if (error) {
      console.error(error);
      process.exit(1);
    }
    console.log(JSON.stringify(result));
    process.exit(0);
  },
);
process.once("SIGTERM", () => instance.stop());
