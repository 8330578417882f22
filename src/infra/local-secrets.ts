import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";

/**
 * The zero-config mode (PGlite, no DATABASE_URL) keeps its own SECRETS_KEY and ADMIN_TOKEN in
 * DATA_DIR, created once with mode 0600, so `npm start` and the `ricochet` CLI agree on them
 * without any setup. A server deployment sets both explicitly.
 */
export function withLocalSecrets(config: Config): Config {
  if (config.databaseUrl || config.dataDir.startsWith("memory://")) return config;
  mkdirSync(config.dataDir, { recursive: true });
  const secretsKey = config.secretsKey ?? Buffer.from(readOrCreate(join(config.dataDir, "secrets.key"), () => randomBytes(32).toString("base64")), "base64");
  const adminToken = config.adminToken ?? readOrCreate(join(config.dataDir, "admin-token"), () => `adm_${randomBytes(32).toString("base64url")}`);
  return { ...config, secretsKey, adminToken };
}

function readOrCreate(path: string, make: () => string): string {
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600, flag: "wx" });
  return readFileSync(path, "utf8").trim();
}
