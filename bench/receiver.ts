/**
 * The callback receiver, in its own process so that its work is not charged to the service or
 * the load generator. A plain node:http server on 127.0.0.1:$PORT. The bench steers it through
 * /_bench/* (same port):
 *   POST /_bench/mode  {mode, failAttempts?, track?}   ok | fail | failFirst
 *     ok         answer 200 to every delivery
 *     fail       answer 500 to every delivery; a series that got `failAttempts` is counted exhausted
 *     failFirst  500 to the first attempt of each series, 200 after (records when attempt 2 came)
 *     track      keep (receive time − body.asyncRequest.dateFinished) per delivery answered 200
 *   POST /_bench/reset  forget everything counted
 *   GET  /_bench/stats  counts and timestamps (epoch ms)
 *   GET  /_bench/dump   the tracked latencies and the attempt-2 receive times by request id
 * A delivery's series is identified by its webhook-id header (Ricochet) or x-bench-id (the
 * baselines); a delivery without either counts as its own series.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

type Mode = "ok" | "fail" | "failFirst";
let mode: Mode = "ok";
let failAttempts = 2;
let track = false;

let state = fresh();
function fresh() {
  return {
    ok: 0,
    failed: 0,
    firstOkAt: 0,
    lastOkAt: 0,
    firstAt: 0,
    lastAt: 0,
    /** Series answered 200, by webhook-id: redeliveries of one request are distinct series. */
    okSeries: new Set<string>(),
    /** Series answered 200 per series number (the `_<n>` suffix of Ricochet's webhook-id). */
    okBySeriesNumber: {} as Record<string, number>,
    attempts: new Map<string, number>(),
    exhausted: 0,
    latencies: [] as number[],
    secondAttemptAt: {} as Record<string, number>,
  };
}

let anonymous = 0;
const seriesOf = (req: IncomingMessage) => String(req.headers["webhook-id"] ?? req.headers["x-bench-id"] ?? `anon-${++anonymous}`);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

type CallbackBody = { asyncRequest?: { id?: string; dateFinished?: string } };
const parse = (text: string): CallbackBody => {
  try {
    return JSON.parse(text) as CallbackBody;
  } catch {
    return {};
  }
};

function delivered(series: string, at: number, text: string) {
  state.ok++;
  state.firstOkAt ||= at;
  state.lastOkAt = at;
  if (!state.okSeries.has(series)) {
    state.okSeries.add(series);
    const number = /_(\d+)$/.exec(series)?.[1] ?? "1";
    state.okBySeriesNumber[number] = (state.okBySeriesNumber[number] ?? 0) + 1;
  }
  if (track) {
    const finished = parse(text).asyncRequest?.dateFinished;
    if (finished) state.latencies.push(at - Date.parse(finished));
  }
}

async function onDelivery(req: IncomingMessage, res: ServerResponse) {
  const text = await readBody(req);
  const at = Date.now();
  state.firstAt ||= at;
  state.lastAt = at;
  const series = seriesOf(req);
  if (mode === "ok") {
    delivered(series, at, text);
    return res.writeHead(200).end("ok");
  }
  const attempt = (state.attempts.get(series) ?? 0) + 1;
  state.attempts.set(series, attempt);
  if (mode === "failFirst" && attempt > 1) {
    const id = parse(text).asyncRequest?.id;
    if (id && attempt === 2) state.secondAttemptAt[id] = at;
    delivered(series, at, text);
    return res.writeHead(200).end("ok");
  }
  state.failed++;
  if (mode === "fail" && attempt === failAttempts) state.exhausted++;
  res.writeHead(500).end("failing on purpose");
}

function stats() {
  const { okSeries, attempts, latencies, secondAttemptAt, ...counts } = state;
  return { mode, ...counts, okDistinct: okSeries.size, seriesSeen: attempts.size, tracked: latencies.length, secondAttempts: Object.keys(secondAttemptAt).length };
}

async function onControl(req: IncomingMessage, res: ServerResponse) {
  const body = req.method === "POST" ? parse(await readBody(req)) : {};
  const json = (value: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value));
  switch (req.url) {
    case "/_bench/mode": {
      const next = body as { mode?: Mode; failAttempts?: number; track?: boolean };
      mode = next.mode ?? mode;
      failAttempts = next.failAttempts ?? failAttempts;
      track = next.track ?? track;
      return json(stats());
    }
    case "/_bench/reset":
      state = fresh();
      return json(stats());
    case "/_bench/stats":
      return json(stats());
    case "/_bench/dump":
      return json({ latencies: state.latencies, secondAttemptAt: state.secondAttemptAt });
    default:
      res.writeHead(404).end();
  }
}

const server = createServer((req, res) => {
  const handle = req.url?.startsWith("/_bench/") ? onControl : onDelivery;
  handle(req, res).catch(() => res.writeHead(500).end());
});
// Deliveries come over pooled keep-alive connections; do not make the senders reconnect.
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("ready"));
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(0));
