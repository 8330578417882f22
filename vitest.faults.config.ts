import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: fault-injection scenarios (test/faults/*.faults.ts), which kill real
 * processes and servers under load. Not part of `npm test` (its include is test/**\/*.test.ts).
 * One file at a time: each scenario measures the machine it runs on, and has 2 cores to share.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.faults.ts"],
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
    retry: 0,
    globalSetup: ["test/faults/global-setup.ts"],
  },
});
