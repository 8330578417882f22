import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/process.js";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.js";

/**
 * Every command and flag of the README's operator block, as printed, in both of the CLI's modes:
 * on the database (DATABASE_URL, no URL) and through a running server's admin API (--url).
 */
describe.each(["database", "server"] as const)("every README CLI command, %s mode", (mode) => {
  let rt: TestRuntime;
  let env: Record<string, string>;
  let pre: string[];
  const tenant = `acme-${randomBytes(3).toString("hex")}`;
  beforeAll(async () => {
    rt = await startTestRuntime({ roles: { api: true, worker: false } });
    env = { ...rt.env, RICOCHET_URL: "", LOG_LEVEL: "warn" };
    if (mode === "server") {
      const { serveApp } = await import("../src/api/http-server.js");
      const server = await new Promise<import("node:http").Server>((resolve) => {
        const s = serveApp(rt.app!.fetch, { port: 0, hostname: "127.0.0.1" }, () => resolve(s));
      });
      const port = (server.address() as import("node:net").AddressInfo).port;
      pre = ["--url", `http://127.0.0.1:${port}`];
      // A CLI on another machine has no DATABASE_URL; it has the admin token.
      env = { ...env, DATABASE_URL: "" };
      closeServer = () => new Promise((resolve) => server.close(() => resolve()));
    } else {
      pre = [];
    }
  });
  let closeServer: () => Promise<void> = async () => {};
  afterAll(async () => {
    await closeServer();
    await rt.stop();
  });

  const cli = async (...args: string[]) => {
    const result = await runCli([...pre, ...args], env);
    expect(result.stderr, `ricochet ${args.join(" ")}`).toBe("");
    expect(result.code).toBe(0);
    return result.stdout;
  };

  it("runs as printed", { timeout: 120_000 }, async () => {
    expect(await cli("tenants", "create", tenant, "--name", "Acme", "--max-concurrent", "5", "--max-queued", "1000")).toContain(`tenant ${tenant} created (max concurrent 5, max queued 1000)`);
    expect(await cli("tenants", "list")).toContain(`${tenant}\tAcme\tmaxConcurrent=5\tmaxQueued=1000`);
    expect(await cli("tenants", "set-limits", tenant, "--max-concurrent", "20")).toContain("max concurrent 20");
    expect(await cli("tenants", "set-limits", tenant, "--max-concurrent", "default")).toContain("max concurrent 10");
    const billing = JSON.parse(await cli("--json", "clients", "create", "--tenant", tenant, "--name", "billing")) as { clientId: string; clientSecret: string };
    expect(await cli("clients", "create", "--tenant", tenant, "--name", "reader", "--scopes", "read")).toMatch(/scopes: read\)/);
    expect(await cli("clients", "list")).toContain(billing.clientId);
    expect(await cli("clients", "list", "--tenant", tenant)).toContain(`${billing.clientId}\t${tenant}\tbilling`);
    expect(await cli("clients", "rotate-secret", billing.clientId)).toMatch(/webhook secret: whsec_/);
    expect(await cli("clients", "rotate-secret", billing.clientId, "--overlap", "24h")).toMatch(/keeps signing until/);
    const rotated = await cli("clients", "rotate-secret", billing.clientId, "--client-secret");
    const newSecret = /client_secret: (\S+)/.exec(rotated)![1]!;
    const token = (await rt.services.oauth.issueToken({ clientId: billing.clientId, clientSecret: newSecret, usedBasic: false }, "*")).access_token;
    expect(await cli("tokens", "revoke", token)).toContain("1 token(s) revoked");
    await rt.services.oauth.issueToken({ clientId: billing.clientId, clientSecret: newSecret, usedBasic: false }, "*");
    expect(await cli("tokens", "revoke", "--client", billing.clientId)).toContain("1 token(s) revoked");
    expect(await cli("queues")).toMatch(/^jobs\twaiting=\d+/m);
    expect(await cli("callbacks", "redeliver", "--tenant", tenant, "--since", "6h")).toContain("0 callback(s) redelivered");
    expect(await cli("clients", "revoke", billing.clientId)).toContain(`client ${billing.clientId} revoked`);
  });
});
