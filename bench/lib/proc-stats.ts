/**
 * CPU time and memory of processes, read from /proc (Linux), so each figure can say where the
 * two cores went: the server, the load generator, PostgreSQL, Redis, the receiver.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds; 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces: the fields we want follow its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Resident memory of a process in MB (VmRSS), or undefined once it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Math.round(Number(match[1]) / 102.4) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Every process whose command name is `name` (e.g. all PostgreSQL backends). */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Busy CPU time of the whole machine (all cores), in seconds. */
function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/** Above this `other` CPU (% of one core) during a measurement, something else competed with it. */
export const NOISY_OTHER_CPU = 50;

export type PidGroups = Record<string, () => number[]>;

/**
 * Starts measuring CPU of groups of processes; `stop()` returns each group's share of ONE core
 * in percent over the interval (200 % = both cores of this machine). Samples every 250 ms and
 * keeps each process's last reading, so a process that exits before `stop()` (autocannon when
 * its run ends) still counts; processes that appear meanwhile (new PostgreSQL backends) count
 * from their first sample. `machine` is the whole machine's busy time and `other` what none of
 * the groups used: if it is large, something else ran meanwhile and the figure is suspect.
 */
export function cpuMeter(groups: PidGroups): { stop(): Record<string, number> } {
  const startedAt = performance.now();
  const machineBefore = machineBusySeconds();
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const groupOf = new Map<number, string>();
  const sample = () => {
    for (const [group, resolve] of Object.entries(groups)) {
      for (const pid of resolve()) {
        groupOf.set(pid, group);
        const used = cpuSeconds(pid);
        if (used === 0 && last.has(pid)) continue; // exited: keep its last reading
        if (!first.has(pid)) first.set(pid, used);
        last.set(pid, used);
      }
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  timer.unref();
  return {
    stop() {
      sample();
      clearInterval(timer);
      const seconds = (performance.now() - startedAt) / 1000;
      const shares: Record<string, number> = {};
      for (const group of Object.keys(groups)) {
        let used = 0;
        for (const [pid, owner] of groupOf) if (owner === group) used += (last.get(pid) ?? 0) - (first.get(pid) ?? 0);
        shares[group] = Math.round((used / seconds) * 100);
      }
      shares.machine = Math.round(((machineBusySeconds() - machineBefore) / seconds) * 100);
      shares.other = Math.max(0, shares.machine - Object.keys(groups).reduce((sum, group) => sum + shares[group]!, 0));
      return shares;
    },
  };
}

/** The processes every figure shares the machine with. */
export const infraGroups: PidGroups = { postgres: () => pidsNamed("postgres"), redis: () => pidsNamed("redis-server") };
