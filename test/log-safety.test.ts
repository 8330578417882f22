import { DrizzleQueryError } from "drizzle-orm/errors";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { spawnRicochet } from "./helpers/process.js";
import { CapturedLogs, jsonBody, startTestRuntime } from "./helpers/runtime.js";

const SECRET = "s3cr3t-VALUE-that-must-never-be-printed";
const INPUT = "private-customer-data-4711";

describe("no secret and no request input in logs or error output", { timeout: 60_000 }, () => {
  it("a rejected configuration names the variable and the rule, never the value", async () => {
    let message = "";
    try {
      loadConfig({ SECRETS_KEY: SECRET, ADMIN_TOKEN: "x", DATABASE_URL: `mysql://root:${SECRET}@db/x`, REDIS_URL: `http://:${SECRET}@r` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/SECRETS_KEY: must be 32 bytes/);
    expect(message).toMatch(/ADMIN_TOKEN: must be at least 24 characters/);
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).not.toContain(SECRET);

    const proc = spawnRicochet("api", { SECRETS_KEY: SECRET, ADMIN_TOKEN: `${SECRET}`.slice(0, 10) });
    expect((await proc.exited).code).toBe(2);
    expect(proc.output()).toContain("SECRETS_KEY");
    expect(proc.output()).not.toContain(SECRET);
    expect(proc.output()).not.toContain(SECRET.slice(0, 10));
  });

  it("a failed query is logged without its parameters", () => {
    const logs = new CapturedLogs();
    const logger = createLogger("info", logs);
    const cause = Object.assign(new Error("connection terminated"), { code: "57P01" });
    logger.warn({ err: new DrizzleQueryError("insert into async_requests values ($1, $2)", [INPUT, SECRET], cause) }, "a dependency is unavailable");
    expect(logs.text).toContain("insert into async_requests");
    expect(logs.text).toContain("connection terminated");
    expect(logs.text).not.toContain(INPUT);
    expect(logs.text).not.toContain(SECRET);
  });

  it("a request that fails inside the database logs the failure, not the request's input", async () => {
    const rt = await startTestRuntime({ roles: { api: true, worker: false } });
    try {
      await rt.db.sql.query(`
        CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = '22000'; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse BEFORE INSERT ON async_requests FOR EACH ROW EXECUTE FUNCTION refuse();`);
      const response = await rt.request("/api/v1/async", jsonBody({ action: "echo", input: { data: INPUT }, metadata: { note: INPUT } }));
      expect(response.status).toBe(500);
      expect(rt.logs.text).toContain("unhandled error");
      expect(rt.logs.text).toContain("refused by a trigger");
      expect(rt.logs.text).not.toContain(INPUT);
      expect(rt.logs.text).not.toContain(rt.client.token);
    } finally {
      await rt.stop();
    }
  });
});
