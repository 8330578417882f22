import { Command } from "commander";
import { loadConfig } from "../config.js";
import { openDatabase } from "../db/client.js";
import { VERSION } from "../version.js";
import { addAdminCommands } from "./admin-commands.js";
import { runServiceOrExit } from "./service.js";

/** The `ricochet` operator CLI. It reads the same environment as the service. */
export function buildCli(): Command {
  const program = new Command("ricochet").description("Ricochet: async requests and webhook delivery").version(VERSION);

  for (const [mode, description] of [
    ["start", "API and worker in one process (zero-config local mode)"],
    ["api", "the HTTP API only"],
    ["worker", "the job and callback workers only"],
  ] as const) {
    program
      .command(mode)
      .description(`Run ${description}`)
      .action(() => runServiceOrExit(mode));
  }

  program
    .command("migrate")
    .description("Apply database migrations (the service also applies them at start-up)")
    .action(async () => {
      const config = loadConfig();
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      await database.migrate();
      await database.close();
      console.log(`migrations applied (${database.kind})`);
    });

  addAdminCommands(program);
  return program;
}
