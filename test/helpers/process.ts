import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export type RicochetProcess = {
  child: ChildProcess;
  output(): string;
  /** Resolves when a log line contains `text`; rejects if the process exits first. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** Runs `src/main.ts <mode>` as its own process, as an operator would, with `env` on top of ours. */
export function spawnRicochet(mode: string, env: Record<string, string>): RicochetProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", mode], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      for (const waiter of waiters) waiter();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    output: () => output,
    exited,
    waitForOutput(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no "${text}" within ${timeoutMs} ms; output:\n${output}`)), timeoutMs);
        const check = () => {
          if (output.includes(text)) finish();
          else if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`exited before "${text}"; output:\n${output}`));
        };
        function finish(error?: Error) {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve();
        }
        waiters.add(check);
        check();
      });
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the `ricochet` CLI to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/ricochet.js", ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A client of the `default` tenant made through a running service's admin API, and a bearer token
 * for it (client credentials): what a test needs to call a spawned process's API.
 */
export async function bootstrapClient(base: string, adminToken: string): Promise<{ clientId: string; clientSecret: string; auth: { authorization: string } }> {
  const admin = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const created = await fetch(`${base}/admin/v1/tenants/default/clients`, { method: "POST", headers: admin, body: JSON.stringify({ name: "test client" }) });
  if (created.status !== 201 && created.status !== 200) throw new Error(`creating a client answered ${created.status}: ${await created.text()}`);
  const client = (await created.json()) as { clientId: string; clientSecret: string };
  const issued = await fetch(`${base}/oauth/token`, { method: "POST", body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }) });
  const { access_token } = (await issued.json()) as { access_token: string };
  return { ...client, auth: { authorization: `Bearer ${access_token}` } };
}
