import type { Command } from "commander";
import { loadConfig, parseDuration } from "../config.js";
import { withLocalSecrets } from "../infra/local-secrets.js";
import { directAdmin, httpAdmin, type AdminOps } from "./admin-client.js";

type GlobalOptions = { url?: string; json?: boolean };

/**
 * Where the CLI sends its work: the admin API of a running server when --url / RICOCHET_URL is
 * given or the deployment uses embedded PGlite (one process may open it); otherwise straight to
 * DATABASE_URL.
 */
async function connect(options: GlobalOptions): Promise<AdminOps> {
  const config = withLocalSecrets(loadConfig());
  const url = options.url || process.env.RICOCHET_URL || (config.databaseUrl ? undefined : `http://127.0.0.1:${config.port}`);
  if (!url) return directAdmin(config);
  if (!config.adminToken) throw new Error("Set ADMIN_TOKEN to the server's admin token");
  return httpAdmin(url, config.adminToken);
}

function print(options: GlobalOptions, value: unknown, human: () => string) {
  console.log(options.json ? JSON.stringify(value, null, 2) : human());
}

/**
 * A limit: a positive integer, or "default" (back to the configured default). The parser keeps
 * "default" as it is (commander turns a parser's null into ""), and `limitValue` maps it to null.
 */
const positiveInt = (name: string) => (text: string): number | "default" => {
  if (text === "default") return "default";
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer or "default"`);
  return value;
};
const limitValue = (value: number | "default" | undefined) => (value === "default" ? null : value);

export function addAdminCommands(program: Command) {
  const run = (work: (ops: AdminOps, options: GlobalOptions) => Promise<void>) => async () => {
    const options = program.opts<GlobalOptions>();
    const ops = await connect(options);
    try {
      await work(ops, options);
    } finally {
      await ops.close();
    }
  };
  program.option("--url <url>", "admin API of a running server (default: RICOCHET_URL, else the database)").option("--json", "print JSON");

  const tenants = program.command("tenants").description("Manage tenants");
  tenants
    .command("create <id>")
    .description("Create a tenant")
    .option("--name <name>", "display name")
    .option("--max-concurrent <n>", "RUNNING requests at once", positiveInt("--max-concurrent"))
    .option("--max-queued <n>", "QUEUED requests at most", positiveInt("--max-queued"))
    .action((id: string, o: { name?: string; maxConcurrent?: number | "default"; maxQueued?: number | "default" }) =>
      run(async (ops, options) => {
        const tenant = await ops.createTenant({ id, name: o.name, maxConcurrent: limitValue(o.maxConcurrent) ?? undefined, maxQueued: limitValue(o.maxQueued) ?? undefined });
        print(options, tenant, () => `tenant ${tenant.id} created (max concurrent ${tenant.limits.maxConcurrent}, max queued ${tenant.limits.maxQueued})`);
      })(),
    );
  tenants
    .command("list")
    .description("List tenants and their limits")
    .action(() =>
      run(async (ops, options) => {
        const list = await ops.listTenants();
        print(options, list, () => list.map((t) => `${t.id}\t${t.name}\tmaxConcurrent=${t.limits.maxConcurrent}\tmaxQueued=${t.limits.maxQueued}`).join("\n"));
      })(),
    );
  tenants
    .command("set-limits <id>")
    .description('Override a tenant\'s limits ("default" goes back to the configured default)')
    .option("--max-concurrent <n>", "RUNNING requests at once", positiveInt("--max-concurrent"))
    .option("--max-queued <n>", "QUEUED requests at most", positiveInt("--max-queued"))
    .action((id: string, o: { maxConcurrent?: number | "default"; maxQueued?: number | "default" }) =>
      run(async (ops, options) => {
        const tenant = await ops.setLimits(id, { maxConcurrent: limitValue(o.maxConcurrent), maxQueued: limitValue(o.maxQueued) });
        print(options, tenant, () => `tenant ${tenant.id}: max concurrent ${tenant.limits.maxConcurrent}, max queued ${tenant.limits.maxQueued}`);
      })(),
    );

  const clients = program.command("clients").description("Manage API clients");
  clients
    .command("create")
    .description("Create a client; its secrets are printed once and never again")
    .requiredOption("--tenant <id>", "the tenant it belongs to")
    .requiredOption("--name <name>", "what it is")
    .option("--scopes <scopes>", "comma-separated: read,write (default both)")
    .action((o: { tenant: string; name: string; scopes?: string }) =>
      run(async (ops, options) => {
        const client = await ops.createClient({ tenantId: o.tenant, name: o.name, scopes: o.scopes?.split(",").map((s) => s.trim()) });
        print(options, client, () =>
          [
            `client created for tenant ${client.tenantId} (scopes: ${client.scopes.join(" ")})`,
            `client_id:      ${client.clientId}`,
            `client_secret:  ${client.clientSecret}`,
            `webhook secret: ${client.webhookSecret}`,
            "Store the secrets now: they are not shown again.",
          ].join("\n"),
        );
      })(),
    );
  clients
    .command("list")
    .description("List clients")
    .option("--tenant <id>", "only this tenant's")
    .action((o: { tenant?: string }) =>
      run(async (ops, options) => {
        const list = await ops.listClients(o.tenant);
        print(options, list, () => list.map((c) => `${c.clientId}\t${c.tenantId}\t${c.name}\t${c.scopes.join(" ")}\t${c.revokedAt ? `revoked ${c.revokedAt}` : "active"}`).join("\n"));
      })(),
    );
  clients
    .command("revoke <clientId>")
    .description("Revoke a client and every token it holds")
    .action((clientId: string) =>
      run(async (ops, options) => {
        const client = await ops.revokeClient(clientId);
        print(options, client, () => `client ${clientId} revoked (${client.tokensRevoked} tokens)`);
      })(),
    );
  clients
    .command("rotate-secret <clientId>")
    .description("Rotate the webhook signing secret (the old one signs too during the overlap), or with --client-secret the client secret")
    .option("--overlap <duration>", "how long the old webhook secret keeps signing, e.g. 24h", parseDuration)
    .option("--client-secret", "rotate the client secret instead (the old one stops working at once)")
    .action((clientId: string, o: { overlap?: number; clientSecret?: boolean }) =>
      run(async (ops, options) => {
        if (o.clientSecret) {
          const rotated = await ops.rotateClientSecret(clientId);
          print(options, rotated, () => `client_secret: ${rotated.clientSecret}\nStore it now: it is not shown again.`);
        } else {
          const rotated = await ops.rotateWebhookSecret(clientId, o.overlap);
          print(options, rotated, () => `webhook secret: ${rotated.webhookSecret}\nThe previous secret keeps signing until ${rotated.previousValidUntil}.`);
        }
      })(),
    );

  program
    .command("queues")
    .description("Job counts of the jobs and callbacks queues, by state")
    .action(() =>
      run(async (ops, options) => {
        const stats = await ops.queueStats();
        print(options, stats, () =>
          Object.entries(stats)
            .map(([queue, counts]) => `${queue}\t${Object.entries(counts).map(([state, n]) => `${state}=${n}`).join(" ")}`)
            .join("\n"),
        );
      })(),
    );

  program
    .command("callbacks")
    .description("Operate callback delivery")
    .command("redeliver")
    .description("Redeliver every EXHAUSTED callback of a tenant last tried since a time")
    .requiredOption("--tenant <id>", "the tenant")
    .requiredOption("--since <time>", "ISO 8601 time, or a duration ago such as 6h")
    .action((o: { tenant: string; since: string }) =>
      run(async (ops, options) => {
        const since = /^\d+(\.\d+)?(ms|s|m|h)$/.test(o.since) ? new Date(Date.now() - parseDuration(o.since)) : new Date(o.since);
        if (Number.isNaN(since.getTime())) throw new Error(`--since: "${o.since}" is neither an ISO 8601 time nor a duration`);
        const result = await ops.redeliverExhausted(o.tenant, since);
        print(options, result, () => `${result.redelivered} callback(s) redelivered`);
      })(),
    );

  program
    .command("tokens")
    .description("Manage bearer tokens")
    .command("revoke [token]")
    .description("Revoke one token, or with --client every token of a client")
    .option("--client <clientId>", "revoke all of this client's tokens")
    .action((token: string | undefined, o: { client?: string }) =>
      run(async (ops, options) => {
        const result = await ops.revokeTokens({ token, clientId: o.client });
        print(options, result, () => `${result.revoked} token(s) revoked`);
      })(),
    );
}
