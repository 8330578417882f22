import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

// docker-compose cannot run here (no Docker engine), so its shape is checked by reading it.
type Service = { command?: string[]; image?: string; build?: string; healthcheck?: { test: string[] }; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }> };

describe("docker-compose.yml and Dockerfile", () => {
  const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as { services: Record<string, Service> };
  const dockerfile = readFileSync("Dockerfile", "utf8");

  it("runs Redis with noeviction and AOF persistence, and Postgres", () => {
    expect(compose.services.redis?.command).toEqual(expect.arrayContaining(["--maxmemory-policy", "noeviction", "--appendonly", "yes"]));
    expect(compose.services.postgres?.image).toMatch(/^postgres:/);
  });

  it("runs api and worker from the built image with entry points that exist", () => {
    expect(dockerfile).toContain("npm run build");
    const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.build).toContain("tsc");
    expect(existsSync("src/main.ts")).toBe(true); // compiled to dist/main.js
    expect(compose.services.api?.command).toEqual(["node", "dist/main.js", "api"]);
    expect(compose.services.worker?.command).toEqual(["node", "dist/main.js", "worker"]);
    for (const name of ["api", "worker"]) {
      const service = compose.services[name]!;
      expect(service.build).toBe(".");
      expect(service.environment?.DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      expect(service.environment?.REDIS_URL).toBe("redis://redis:6379");
      expect(service.environment?.SECRETS_KEY).toMatch(/^\$\{SECRETS_KEY:\?/); // required, never a default
      expect(service.depends_on).toEqual({ redis: { condition: "service_healthy" }, postgres: { condition: "service_healthy" } });
    }
  });

  it("gives every service a healthcheck; the API's uses /readyz", () => {
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck, name).toBeDefined();
    expect(compose.services.api?.healthcheck?.test.join(" ")).toContain("/readyz");
    expect(compose.services.worker?.healthcheck?.test.join(" ")).toContain(`127.0.0.1:${compose.services.worker?.environment?.METRICS_PORT}/readyz`);
  });
});

describe("runtime dependencies", () => {
  it("every package the service imports is a production dependency (the Docker image prunes dev ones)", async () => {
    const { readdirSync, statSync } = await import("node:fs");
    const { builtinModules } = await import("node:module");
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string> };
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = `${dir}/${entry}`;
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith(".ts")) files.push(path);
      }
    };
    walk("src");
    const imported = new Set<string>();
    for (const file of files) {
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:^|\n)\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/g)) {
        if (spec!.startsWith(".") || spec!.startsWith("node:") || builtinModules.includes(spec!)) continue;
        const name = spec!.startsWith("@") ? spec!.split("/").slice(0, 2).join("/") : spec!.split("/")[0]!;
        imported.add(name);
      }
    }
    expect(imported.size).toBeGreaterThan(10);
    expect([...imported].filter((name) => !pkg.dependencies[name])).toEqual([]);
  });
});
