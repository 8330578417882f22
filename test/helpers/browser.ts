import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Debian's chromium package; CI installs it with apt-get. A missing binary fails the launch. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Context options a test may set at launch (a persistent context takes them up front). */
export type BrowserOptions = NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>;

export type TestBrowser = {
  context: BrowserContext;
  /** The page chromium opens with a persistent profile. */
  page: Page;
  close(): Promise<void>;
};

/**
 * Launches headless Debian chromium on a fresh profile directory, with nothing that talks to
 * the network on its own (updates, sync, QUIC), so tests only see the traffic they cause.
 * Playwright passes the profile as --user-data-dir itself (it refuses the flag in `args`).
 * `close` stops the browser and removes the profile.
 */
export async function launchBrowser(options: Omit<BrowserOptions, "executablePath" | "headless" | "args"> = {}): Promise<TestBrowser> {
  // Fail, never skip: a browser test that cannot run has not passed.
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`No chromium at ${CHROMIUM_PATH}: install it with apt-get install chromium`);
  const userDataDir = await mkdtemp(join(tmpdir(), "ricochet-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      ...options,
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      try {
        await context.close();
      } finally {
        await rm(userDataDir, { recursive: true, force: true });
      }
    },
  };
}
