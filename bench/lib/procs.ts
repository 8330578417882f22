/**
 * Child processes of the bench and what is left to clean up. Every child is tracked from the
 * moment it is spawned, so a failure or Ctrl-C anywhere still stops all of them; cleanups
 * (drop a database, delete Redis keys) run in reverse order of registration, once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let logDirPath: string | undefined;
/** Where the children's logs go; made on first use, so importing this module creates nothing. */
export const logDir = () => (logDirPath ??= mkdtempSync(join(tmpdir(), "ricochet-bench-")));
const children = new Set<ChildProcess>();
const cleanups: { name: string; run: () => Promise<void> }[] = [];
let cleaning: Promise<void> | undefined;
/** True once cleanup started (a signal, a failure, or the end): errors after that are its echo. */
export const stopping = () => cleaning !== undefined;

export const log = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type Child = {
  name: string;
  process: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  /** Everything the child wrote on stdout, when `captureStdout` was asked for. */
  stdout(): string;
  stop(graceMs?: number): Promise<void>;
};

let counter = 0;

/** Spawns a child; stderr (and stdout unless captured) go to a log file under `logDir()`. */
export function spawnChild(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; captureStdout?: boolean } = {}): Child {
  if (cleaning) throw new Error(`not starting ${name}: the bench is stopping`);
  const logFile = join(logDir(), `${String(++counter).padStart(2, "0")}-${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`could not spawn ${name}`);
  children.add(child);
  let captured = "";
  if (options.captureStdout) child.stdout!.on("data", (chunk: Buffer) => (captured += chunk.toString()));
  else child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? "unknown");
    }),
  );
  return {
    name,
    process: child,
    pid: child.pid,
    logFile,
    exited,
    stdout: () => captured,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `node --import tsx <script>`: how the bench runs its own TypeScript helpers and the service. */
export function spawnTs(name: string, script: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd: string; captureStdout?: boolean }): Child {
  // BENCH_CPU_PROF=<dir>: every TypeScript child writes V8 CPU profiles into <dir>/<child's name>/
  // when it exits, one per thread (CPU.<date>.<pid>.<thread>….cpuprofile; thread 0 is the main one).
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${join(process.env.BENCH_CPU_PROF, name)}`] : [];
  return spawnChild(name, process.execPath, [...profile, "--import", "tsx", script, ...args], options);
}

export function tailOf(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export function onCleanup(name: string, run: () => Promise<void>): () => void {
  const entry = { name, run };
  cleanups.push(entry);
  return () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

/** Kills every child still running, then runs the remaining cleanups (each at most once). */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) child.kill("SIGKILL");
    while (cleanups.length) {
      const entry = cleanups.pop()!;
      await entry.run().catch((error: unknown) => log(`cleanup "${entry.name}" failed: ${String(error)}`));
    }
  })();
  return cleaning;
}

export function removeLogs(): void {
  if (logDirPath) rmSync(logDirPath, { recursive: true, force: true });
}

// A stray rejection must not end the process before the cleanup is done: while stopping, the
// children it kills make pending operations fail, which is expected; otherwise it is a bug,
// reported, and the bench stops cleanly.
process.on("unhandledRejection", (error) => {
  if (cleaning) return;
  console.error("unhandled rejection:", error);
  void cleanupAll().finally(() => process.exit(1));
});

// Ctrl-C or a kill: stop the children, drop what was created, then exit.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping every child process and cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
