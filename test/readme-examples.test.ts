import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnRicochet, type RicochetProcess } from "./helpers/process.js";
import { deleteKeys, freePortBelowEphemeral, uniquePrefix } from "./helpers/redis.js";

/**
 * The README's walk-through, run as printed against a zero-config `start` (the only changes:
 * the ports 3000 and 4000 become free ones). Blocks marked `<!-- runnable: … -->` run in one bash
 * session, in the README's order of use; a command whose line ends in `# "TEXT"` or `# 123` must
 * print exactly that, `# the same id` the same as the command before it, and the JSON block
 * after step 5 is what step 5 prints. So the README cannot drift from what the service does.
 */
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

function block(name: string): string {
  const marker = README.indexOf(`<!-- runnable: ${name}`);
  if (marker < 0) throw new Error(`README has no runnable block "${name}"`);
  const start = README.indexOf("\n", README.indexOf("```", marker)) + 1;
  return README.slice(start, README.indexOf("\n```", start));
}

/**
 * Turns a block into bash that checks each annotated command's output. A `curl` command's output
 * is captured (and printed) so that the next line may say it prints `the same id`; every other
 * line (assignments, functions, loops) runs as it is.
 */
function checked(source: string): string {
  const lines: string[] = [];
  let pending = "";
  for (const raw of source.split("\n")) {
    pending += raw;
    if (raw.endsWith("\\")) {
      pending += "\n";
      continue;
    }
    const command = pending;
    pending = "";
    const annotated = /^(?<cmd>[^#]*?\S)\s+# (?<expected>"[^"]*"|\d+|the same id)$/.exec(command)?.groups as { cmd: string; expected: string } | undefined;
    const cmd = annotated?.cmd ?? command;
    if (!cmd.startsWith("curl ")) {
      lines.push(command);
      continue;
    }
    lines.push(`__out=$(${cmd}); echo "$__out"`);
    if (annotated) {
      const want = annotated.expected === "the same id" ? '"$__previous"' : `'${annotated.expected}'`;
      const shown = cmd.replaceAll("\\\n", " ").replace(/["$`\\]/g, "\\$&");
      lines.push(`[ "$__out" = ${want} ] || { echo "README MISMATCH: got [$__out], the README says ${annotated.expected.replace(/"/g, "")}, for: ${shown}" >&2; exit 1; }`);
    }
    lines.push('__previous="$__out"');
  }
  return lines.join("\n");
}

describe("the README's walk-through", { timeout: 120_000 }, () => {
  let service: RicochetProcess;
  let dataDir: string;
  let port: number;
  let receiverPort: number;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    // Below the ephemeral range: the receiver binds its port only once the walk-through reaches
    // it, seconds later, and meanwhile a parallel test's server could be handed a port of that range.
    [port, receiverPort] = [await freePortBelowEphemeral(), await freePortBelowEphemeral()];
    dataDir = mkdtempSync(join(tmpdir(), "ricochet-readme-"));
    // Zero-config mode uses the Redis already answering on 127.0.0.1:6379 when there is one (as
    // here): a prefix of its own keeps the walk-through apart from other tests, and removable.
    service = spawnRicochet("start", { DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "", OUTBOUND_ALLOW: "127.0.0.1/32", RICOCHET_URL: "", QUEUE_PREFIX: prefix });
    await service.waitForOutput("ricochet is listening", 60_000);
  });
  afterAll(async () => {
    await service.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    await deleteKeys(prefix);
  });

  it("runs as printed and prints what it says", async () => {
    const ports = (text: string) => text.replaceAll("localhost:3000", `localhost:${port}`).replaceAll("4000", String(receiverPort));
    const script = [
      "set -uo pipefail",
      "trap 'kill $(jobs -p) 2>/dev/null' EXIT",
      ports(checked(block("walkthrough"))),
      'echo "$__out" > "$STEP5"', // step 5, the block's last command
      ports(checked(block("try-it-locally"))),
      // The callback arrives asynchronously: wait for its line (the first line is the README's own
      // readiness probe, a GET) before the shell ends; on a loaded CI machine this takes seconds.
      'for _ in $(seq 1 600); do grep -q "echo" "$RECEIVED" 2>/dev/null && break; sleep 0.1; done',
      ports(checked(block("more"))),
    ].join("\n");
    const step5 = join(dataDir, "step5.json");
    const received = join(dataDir, "received.log");
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      // The receiver's lines go to a file instead of the terminal the README has in mind.
      const bash = spawn("bash", ["-c", script.replace(/\.listen\((\d+),'127\.0\.0\.1'\)" &$/m, `.listen($1,'127.0.0.1')" > "$RECEIVED" &`)], {
        cwd: new URL("..", import.meta.url).pathname,
        env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: "", RICOCHET_URL: "", QUEUE_PREFIX: prefix, STEP5: step5, RECEIVED: received },
      });
      let stdout = "";
      let stderr = "";
      bash.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      bash.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
      bash.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.stderr).not.toContain("README MISMATCH");
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    // Step 1 listed the actions; step 3 answered 202 with Location; the revoked token is refused.
    expect(result.stdout).toContain('"analyse"');
    expect(result.stdout).toMatch(/HTTP\/1\.1 202 Accepted[\s\S]*location: \/api\/v1\/async\//i);
    // Step 5 printed exactly the result the README shows.
    const shown = JSON.parse(block("the output of step 5")) as unknown;
    expect(JSON.parse(readFileSync(step5, "utf8"))).toEqual(shown);
    // The receiver of "Try it locally" printed the signed callback as described.
    const line = readFileSync(received, "utf8");
    expect(line, `the service's log:\n${service.output().split("\n").filter((l) => /callback|attempt|deliver/i.test(l)).slice(-20).join("\n")}`).toMatch(
      /^msg_[0-9a-f]{32}_1 \{"asyncRequest":\{.*"status":"COMPLETED".*\},"echo":\{"data":"hello"\}\}/m,
    );
  });
});
