/**
 * Private Redis deployments started from Debian's `redis-server` on free ports, the way teams run
 * Redis in production: a three-master Cluster, a primary + replica watched by three Sentinels, and
 * a TLS-only server with its own CA. Each lives in a temporary directory removed by `stop()`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./redis.js";

type Server = { port: number; child: ChildProcess; exited: Promise<void> };

function launch(args: string[], port: number): Server {
  const child = spawn("redis-server", args, { stdio: "ignore" });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return { port, child, exited };
}

async function kill(server: Server, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal);
  await server.exited;
}

/** Resolves once a plain connection to `port` answers `check` (PING by default). */
async function until(port: number, check: (redis: Redis) => Promise<boolean> = async (r) => (await r.ping()) === "PONG", timeoutMs = 20_000, password?: string, ca?: string): Promise<void> {
  const redis = new Redis({ port, host: "127.0.0.1", password, ...(ca ? { tls: { ca } } : {}), lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  redis.on("error", () => {});
  const deadline = Date.now() + timeoutMs;
  try {
    await redis.connect().catch(() => {});
    while (!(await check(redis).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`redis on port ${port} did not get ready`);
      await new Promise((done) => setTimeout(done, 50));
    }
  } finally {
    redis.disconnect();
  }
}

export type PrivateCluster = {
  ports: number[];
  /** With `tls`: the CA that signed the nodes' certificate (PEM file). */
  caFile?: string;
  /** The port of the master that owns `key`'s slot (`CLUSTER KEYSLOT`, `CLUSTER SHARDS`). */
  ownerOf(key: string): Promise<number>;
  stop(): Promise<void>;
};

/** Three masters, no replicas, every slot assigned (`redis-cli --cluster create`). */
export async function startPrivateCluster(options: { hz?: number; tls?: boolean } = {}): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), "ricochet-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const certs = options.tls ? makeCertificates(dir) : undefined;
  const ca = certs ? readFileSync(certs.ca, "utf8") : undefined;
  // With TLS the nodes talk TLS to clients and to each other (the cluster bus), on the same ports.
  const listen = (port: number) =>
    certs
      ? ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes", "--tls-cert-file", certs.cert, "--tls-key-file", certs.key, "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "no"]
      : ["--port", String(port)];
  const servers = ports.map((port) =>
    launch(
      [...listen(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--dir", dir, "--save", "", "--appendonly", "no", "--hz", String(options.hz ?? 100)],
      port,
    ),
  );
  const stop = async () => {
    await Promise.all(servers.map((s) => kill(s)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map((port) => until(port, undefined, undefined, undefined, ca)));
    const cliTls = certs ? ["--tls", "--cacert", certs.ca] : [];
    execFileSync("redis-cli", [...cliTls, "--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], { stdio: "ignore" });
    await Promise.all(ports.map((port) => until(port, async (r) => /cluster_state:ok/.test((await r.call("CLUSTER", "INFO")) as string), undefined, undefined, ca)));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    ...(certs ? { caFile: certs.ca } : {}),
    async ownerOf(key) {
      const redis = new Redis({ port: ports[0], host: "127.0.0.1", ...(ca ? { tls: { ca } } : {}) });
      try {
        const slot = (await redis.call("CLUSTER", "KEYSLOT", key)) as number;
        const slots = (await redis.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
        const owner = slots.find(([from, to]) => slot >= from && slot <= to);
        if (!owner) throw new Error(`no node owns slot ${slot}`);
        return owner[2][1];
      } finally {
        redis.disconnect();
      }
    },
    stop,
  };
}

export type PrivateSentinel = {
  name: string;
  sentinelPorts: number[];
  /** The port of the current primary, as the sentinels see it. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary; resolves once the sentinels have promoted the replica. */
  killPrimaryAndWaitForFailover(): Promise<{ oldPort: number; newPort: number }>;
  /** Starts a killed server again, as a replica of the current primary (as an operator would). */
  restartAsReplica(port: number): Promise<void>;
  stop(): Promise<void>;
};

/**
 * A primary and a replica (AOF off: Redis as most teams run it), watched by three sentinels with
 * quorum 2 that call the primary down after `downAfterMs`.
 */
export async function startPrivateSentinel(options: { downAfterMs?: number; hz?: number; password?: string; sentinelPassword?: string } = {}): Promise<PrivateSentinel> {
  const name = "ricochet-test";
  const dir = mkdtempSync(join(tmpdir(), "ricochet-sentinel-"));
  const hz = String(options.hz ?? 100);
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const { password, sentinelPassword } = options;
  const auth = password ? ["--requirepass", password, "--masterauth", password] : [];
  const common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--hz", hz, "--dir", dir, ...auth];
  const servers: Server[] = [
    launch(["--port", String(primaryPort), ...common], primaryPort),
    launch(["--port", String(replicaPort), ...common, "--replicaof", "127.0.0.1", String(primaryPort)], replicaPort),
  ];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const stop = async () => {
    await Promise.all(servers.map((s) => kill(s)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(primaryPort, undefined, undefined, password);
    await until(replicaPort, async (r) => /master_link_status:up/.test(await r.info("replication")), undefined, password);
    for (const port of sentinelPorts) {
      // A sentinel rewrites its config file: each gets its own.
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          ...(password ? [`sentinel auth-pass ${name} ${password}`] : []),
          ...(sentinelPassword ? [`requirepass ${sentinelPassword}`] : []),
          "",
        ].join("\n"),
      );
      servers.push(launch([file, "--sentinel"], port));
    }
    await Promise.all(sentinelPorts.map((port) => until(port, async (r) => /sentinels=3/.test(await r.info("sentinel")), undefined, sentinelPassword)));
  } catch (error) {
    await stop();
    throw error;
  }
  const primaryPortNow = async () => {
    const redis = new Redis({ port: sentinelPorts[0], host: "127.0.0.1", password: sentinelPassword });
    try {
      const [, port] = (await redis.call("SENTINEL", "get-master-addr-by-name", name)) as [string, string];
      return Number(port);
    } finally {
      redis.disconnect();
    }
  };
  return {
    name,
    sentinelPorts,
    primaryPort: primaryPortNow,
    async killPrimaryAndWaitForFailover() {
      const oldPort = await primaryPortNow();
      await kill(servers.find((s) => s.port === oldPort)!);
      for (const port of sentinelPorts) {
        await until(port, async () => (await primaryPortNow()) !== oldPort, 30_000, sentinelPassword);
      }
      const newPort = await primaryPortNow();
      await until(newPort, async (r) => /role:master/.test(await r.info("replication")), undefined, password);
      return { oldPort, newPort };
    },
    async restartAsReplica(port) {
      const primary = await primaryPortNow();
      servers.splice(servers.findIndex((s) => s.port === port), 1);
      servers.push(launch(["--port", String(port), ...common, "--replicaof", "127.0.0.1", String(primary)], port));
      await until(port, async (r) => /master_link_status:up/.test(await r.info("replication")), 30_000, password);
    },
    stop,
  };
}

export type PrivateTlsRedis = { port: number; url: string; caFile: string; stop(): Promise<void> };

/** A Redis that speaks TLS only, with a certificate for 127.0.0.1 signed by a fresh private CA. */
/** A fresh private CA and a certificate for 127.0.0.1 it signed, as PEM files in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Ricochet test CA", "-keyout", file("ca.key"), "-out", file("ca.crt"));
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", file("redis.key"), "-out", file("redis.csr"));
  writeFileSync(file("san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", file("redis.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", file("san.ext"), "-out", file("redis.crt"));
  return { ca: file("ca.crt"), cert: file("redis.crt"), key: file("redis.key") };
}

export async function startPrivateTlsRedis(): Promise<PrivateTlsRedis> {
  const dir = mkdtempSync(join(tmpdir(), "ricochet-tls-"));
  const file = (name: string) => join(dir, name);
  makeCertificates(dir);
  const port = await freePort();
  const server = launch(
    ["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1", "--tls-cert-file", file("redis.crt"), "--tls-key-file", file("redis.key"), "--tls-ca-cert-file", file("ca.crt"), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", dir],
    port,
  );
  const stop = async () => {
    await kill(server);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const probe = new Redis({ port, host: "127.0.0.1", tls: { ca: readFileSync(file("ca.crt"), "utf8") }, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on("error", () => {});
    await probe.connect().catch(() => {});
    await probe.ping();
    probe.disconnect();
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `rediss://127.0.0.1:${port}`, caFile: file("ca.crt"), stop };
}
