import { execFile } from "node:child_process";
import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** The checks of scripts/check-openapi.sh, run on a document a test fetched from its runtime. */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
const run = promisify(execFile);
// Offline, and nothing but the lint result on stdout.
const QUIET = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };

export type LintProblem = { ruleId: string; severity: "error" | "warn"; message: string; pointer: string };

export async function writeDocument(document: unknown): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "ricochet-openapi-"));
  const file = join(dir, "openapi.json");
  await writeFile(file, JSON.stringify(document, null, 2));
  return { dir, file };
}

/** `redocly lint` with the recommended rules: every problem, errors and warnings. */
export async function lintDocument(file: string): Promise<LintProblem[]> {
  // It exits 1 when there are errors; the JSON report is on stdout either way.
  const { stdout } = await run(bin("redocly"), ["lint", "--extends=recommended", "--format=json", file], { env: QUIET, maxBuffer: 64 << 20 }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }),
  );
  const report = JSON.parse(stdout) as { problems: { ruleId: string; severity: "error" | "warn"; message: string; location: { pointer: string }[] }[] };
  return report.problems.map((problem) => ({ ruleId: problem.ruleId, severity: problem.severity, message: problem.message, pointer: problem.location[0]?.pointer ?? "" }));
}

/**
 * Generates types from the document with openapi-typescript and type-checks the typed client of
 * scripts/openapi-client/ against them, with `extra` files beside it. Resolves to tsc's output
 * and whether it passed.
 */
export async function compileClient(file: string, dir: string, extra: Record<string, string> = {}): Promise<{ ok: boolean; output: string }> {
  const clientDir = join(dir, "client");
  await cp(join(ROOT, "scripts/openapi-client"), clientDir, { recursive: true });
  for (const [name, source] of Object.entries(extra)) await writeFile(join(clientDir, name), source);
  await run(bin("openapi-typescript"), [file, "--default-non-nullable=false", "-o", join(clientDir, "schema.d.ts")], { env: QUIET });
  try {
    const { stdout } = await run(bin("tsc"), ["-p", clientDir]);
    return { ok: true, output: stdout };
  } catch (error) {
    return { ok: false, output: (error as { stdout?: string }).stdout ?? String(error) };
  }
}
