import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDuration } from "../src/config.js";

describe("configuration", () => {
  it("has zero-config defaults", () => {
    expect(loadConfig({})).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      dataDir: "./data",
      redisUrl: "redis://127.0.0.1:6379",
      queuePrefix: "{ricochet}",
      bodyLimit: 1024 * 1024,
      workerConcurrency: 10,
      sweeperInterval: 15_000,
    });
  });

  it("parses numbers, sizes and durations", () => {
    const config = loadConfig({ PORT: "8080", BODY_LIMIT: "512kb", SWEEPER_INTERVAL: "2m", JOB_LOCK_DURATION: "1.5s", REDIS_URL: "redis://r:6379" });
    expect(config).toMatchObject({ port: 8080, bodyLimit: 512 * 1024, sweeperInterval: 120_000, jobLockDuration: 1_500 });
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
  });

  it("checks the outbound allow-list and the http action's upstreams", () => {
    expect(loadConfig({ OUTBOUND_ALLOW: "10.0.0.0/8, 127.0.0.1,hooks.internal,::1" }).outboundAllow).toEqual(["10.0.0.0/8", "127.0.0.1", "hooks.internal", "::1"]);
    expect(() => loadConfig({ OUTBOUND_ALLOW: "10.0.0.0/33" })).toThrow(/OUTBOUND_ALLOW/);
    expect(() => loadConfig({ HTTP_ACTION_UPSTREAMS: "ftp://x/" })).toThrow(/HTTP_ACTION_UPSTREAMS/);
    expect(() => loadConfig({ HTTP_ACTION_UPSTREAMS: "not a url" })).toThrow(/HTTP_ACTION_UPSTREAMS/);
  });

  it("treats empty values as unset", () => {
    expect(loadConfig({ PORT: "", DATABASE_URL: "" })).toMatchObject({ port: 3000, databaseUrl: undefined });
  });

  it("refuses bad values, naming each variable", () => {
    const attempt = () =>
      loadConfig({ PORT: "70000", DATABASE_URL: "mysql://x", LOG_LEVEL: "loud", SWEEPER_INTERVAL: "often", BODY_LIMIT: "big" });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      for (const name of ["PORT", "DATABASE_URL", "LOG_LEVEL", "SWEEPER_INTERVAL", "BODY_LIMIT"]) expect(message).toContain(`${name}:`);
      expect(message).not.toContain("70000"); // the rule, not the value (values may be secrets)
    }
  });
});
