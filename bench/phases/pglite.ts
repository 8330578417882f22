/**
 * The zero-configuration mode: `start` (API and worker in one process) on embedded PGlite in a
 * temporary DATA_DIR. Reported without targets: end to end first (on an idle stack), then
 * submit at saturation (with the worker running the submitted jobs meanwhile).
 */
import { config } from "../lib/config.js";
import { saturate } from "../lib/load.js";
import { log } from "../lib/procs.js";
import type { Receiver } from "../lib/receiver-client.js";
import { startRicochet, submitBody } from "../lib/ricochet.js";
import { deliverAll } from "./e2e.js";

export async function pgliteRun(receiver: Receiver) {
  const stack = await startRicochet("pglite", { topology: "start", database: "pglite" });
  try {
    const pids = stack.cpuGroups();
    const endToEnd = await deliverAll({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody(receiver.hookUrl) }, receiver, config.pgliteE2e, pids);
    log(`pglite end to end: ${endToEnd.delivered}/${endToEnd.requested} in ${endToEnd.seconds} s → ${endToEnd.deliveriesPerSecond}/s`);
    const submit = await saturate({ url: stack.submitUrl, headers: stack.authHeaders, body: submitBody() }, pids);
    log(`pglite submit (start mode): ${submit.okPerSecond}/s, p50 ${submit.p50ms} ms, p99 ${submit.p99ms} ms`);
    return { submit, endToEnd };
  } finally {
    await stack.stop();
  }
}
