import { defineAction, RetryableError, z } from "ricochet";

/**
 * I/O-bound: fetches a page and answers its <title>. Runs on the worker's event loop (the
 * default) through Ricochet's guarded HTTP client, so OUTBOUND_ALLOW decides which hosts it may
 * reach. An upstream that answers 5xx is worth another try: up to 3 runs, 1 s then 5 s apart.
 */
export const pageTitle = defineAction({
  name: "page-title",
  description: "Fetches a web page and returns its <title>",
  input: z.object({ url: z.url().max(2_000) }),
  result: z.object({ title: z.string().nullable(), status: z.number().int() }),
  resultKey: "page",
  timeLimitMs: 15_000,
  concurrency: 20,
  retry: { attempts: 3, backoffMs: [1_000, 5_000] },
  maxInputBytes: 4_096,
  async run({ url }, { http, logger }) {
    const response = await http.send({ url, method: "GET", timeoutMs: 10_000, maxBodyBytes: 256 * 1024 });
    if (response.statusCode >= 500) throw new RetryableError("UPSTREAM_UNAVAILABLE", `${new URL(url).host} answered ${response.statusCode}`);
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(response.body.toString("utf8"))?.[1]?.trim() ?? null;
    logger.info({ status: response.statusCode, found: title !== null }, "fetched the page");
    return { title, status: response.statusCode };
  },
});
