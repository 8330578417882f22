import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export class DataDirInUse extends Error {
  override name = "DataDirInUse";
}

type Holder = { pid: number; startedAt: string; command: string };

/**
 * One process at a time may open a zero-config data directory: PGlite is an embedded database,
 * and a second process writing the same files silently loses data. The lock is a file created
 * exclusively (O_EXCL) holding the holder's pid; a lock whose process is gone is taken over.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const path = join(dataDir, "ricochet.lock");
  const mine: Holder = { pid: process.pid, startedAt: new Date().toISOString(), command: process.argv.slice(1).join(" ") };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, JSON.stringify(mine));
      closeSync(fd);
      return {
        release() {
          const holder = readHolder(path);
          if (holder?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readHolder(path);
      if (holder && holder.pid !== process.pid && alive(holder.pid)) {
        throw new DataDirInUse(
          `${dataDir} is in use by process ${holder.pid} (started ${holder.startedAt}: ${holder.command}). ` +
            "One process at a time may open a zero-config data directory: stop that one, or use the running server (the CLI talks to it), or give this one its own DATA_DIR.",
        );
      }
      rmSync(path, { force: true }); // left by a process that is gone
    }
  }
  throw new DataDirInUse(`Could not lock ${dataDir}: another process is starting on it at the same moment`);
}

function readHolder(path: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Holder;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
