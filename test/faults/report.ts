import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const REPORTS_DIR = join(ROOT, "reports");
export const ROWS_FILE = join(REPORTS_DIR, ".faults-rows.jsonl");
export const REPORT_FILE = join(REPORTS_DIR, "faults.md");

export type Row = {
  order: number;
  scenario: string;
  accepted: number;
  refused: number;
  completed: number;
  delivered: number;
  duplicates: number;
  lost: number;
  notes: string;
  durationS: number;
  /** Extra lines for the report's details section (measurements that do not fit the table). */
  details?: string[];
};

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** The table row: printed now, and kept for reports/faults.md (written by the global teardown). */
export function recordRow(row: Row): void {
  mkdirSync(REPORTS_DIR, { recursive: true });
  appendFileSync(ROWS_FILE, `${JSON.stringify(row)}\n`);
  console.log(`| ${row.scenario} | ${row.accepted} | ${row.refused} | ${row.completed} | ${row.delivered} | ${row.duplicates} | ${row.lost} | ${row.notes} |`);
}

export function readRows(): Row[] {
  if (!existsSync(ROWS_FILE)) return [];
  return readFileSync(ROWS_FILE, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Row)
    .sort((a, b) => a.order - b.order);
}

export function clearRows(): void {
  rmSync(ROWS_FILE, { force: true });
}

/** reports/faults.md: the date, the machine, the table, and each scenario's details. */
export function writeReport(rows: Row[], totalMs: number, knobs: Record<string, number>): void {
  const lines = [
    "# Fault-injection run (`npm run test:faults`)",
    "",
    `Date: ${new Date().toISOString()} · Node ${process.version} · ${cpus().length} cores · total ${(totalMs / 1000).toFixed(0)} s`,
    "",
    "Every scenario runs Ricochet as real child processes (PostgreSQL mode) against real Redis and PostgreSQL,",
    "drives `echo` submits with a `callbackUrl` at a fixed rate, injects the fault, recovers, waits until",
    "everything accepted has settled, and counts from the database and the receiver's log.",
    "`accepted` = submits answered 202 with an id; `refused` = every other answer or transport error;",
    "`completed` = accepted requests in a final status; `delivered` = distinct webhook-ids answered 200;",
    "`duplicates` = further 200s for a webhook-id already delivered (at-least-once); `lost` = accepted but",
    "never finished, or finished with a callbackUrl and never delivered (must be 0).",
    "",
    "| scenario | accepted | refused | completed | delivered | duplicates | lost | notes |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    ...rows.map((r) => `| ${cell(r.scenario)} | ${r.accepted} | ${r.refused} | ${r.completed} | ${r.delivered} | ${r.duplicates} | ${r.lost} | ${cell(r.notes)} (${r.durationS.toFixed(0)} s) |`),
    "",
  ];
  const detailed = rows.filter((r) => r.details?.length);
  if (detailed.length) {
    lines.push("## Details", "");
    for (const row of detailed) lines.push(`### ${row.scenario}`, "", ...row.details!.map((d) => `- ${d}`), "");
  }
  lines.push("## Settings", "", "```", ...Object.entries(knobs).map(([k, v]) => `${k} = ${v}`), "```", "");
  mkdirSync(REPORTS_DIR, { recursive: true });
  writeFileSync(REPORT_FILE, lines.join("\n"));
}
