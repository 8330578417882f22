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

  it("reads each Redis deployment, and refuses mixed or half-configured ones with a reason", () => {
    expect(loadConfig({}).redis).toEqual({ mode: "single", url: "redis://127.0.0.1:6379", tlsCa: undefined });
    expect(loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, [::1]:7001", REDIS_PASSWORD: "pw", REDIS_TLS: "true" }).redis).toMatchObject({
      mode: "cluster",
      nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "::1", port: 7001 }],
      password: "pw",
      tls: true,
    });
    expect(loadConfig({ REDIS_SENTINELS: "s1:26379,s2:26379", REDIS_SENTINEL_NAME: "main", REDIS_SENTINEL_PASSWORD: "spw" }).redis).toMatchObject({
      mode: "sentinel",
      sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26379 }],
      name: "main",
      sentinelPassword: "spw",
      tls: false,
    });
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(refused({ REDIS_CLUSTER_NODES: "a:1", QUEUE_PREFIX: "ricochet" })).toMatch(/QUEUE_PREFIX: must contain a hash tag on a Redis Cluster, for example \{ricochet\}/);
    expect(refused({ REDIS_CLUSTER_NODES: "a:1", REDIS_URL: "redis://a:1" })).toMatch(/REDIS_URL: cannot be used with REDIS_CLUSTER_NODES/);
    expect(refused({ REDIS_CLUSTER_NODES: "a:1", REDIS_SENTINELS: "b:2" })).toMatch(/REDIS_SENTINELS: cannot be used with REDIS_CLUSTER_NODES/);
    expect(refused({ REDIS_CLUSTER_NODES: "a" })).toMatch(/REDIS_CLUSTER_NODES: "a" is not host:port/);
    expect(refused({ REDIS_SENTINELS: "a:99999" })).toMatch(/REDIS_SENTINELS: "a:99999" is not host:port/);
    expect(refused({ REDIS_PASSWORD: "pw" })).toMatch(/REDIS_PASSWORD: is for REDIS_CLUSTER_NODES or REDIS_SENTINELS; with REDIS_URL put it in the URL/);
    expect(refused({ REDIS_TLS: "true" })).toMatch(/REDIS_TLS: .*use rediss:\/\//);
    expect(refused({ REDIS_TLS_CA: "/nonexistent/ca.pem" })).toMatch(/REDIS_TLS_CA: cannot be read \(ENOENT\)/);
    // The password is never echoed.
    expect(refused({ REDIS_PASSWORD: "s3cret-value" })).not.toContain("s3cret-value");
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
