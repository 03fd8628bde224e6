/**
 * A throwaway PostgreSQL cluster for integration tests: `initdb` into a temp directory, `pg_ctl`
 * on a free port, one database, a random password. In CI (`CI=true`) a missing PostgreSQL fails the
 * suite; elsewhere the tests that need it skip with a message saying how to install it.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/** A running test cluster; `url` points at its database, with the password in it. */
export interface TestPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/<database>`. */
  readonly url: string;
  readonly port: number;
  readonly password: string;
  /** Stops the server (fast shutdown: open connections are dropped, as in a real restart). */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops the server, waits `downMs`, and starts it again. */
  restart(downMs?: number): Promise<void>;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

/** Where PostgreSQL's server binaries are, or why they cannot be used. */
export type PostgresAvailability = { readonly bin: string } | { readonly skip: string };

/**
 * Finds `initdb` and `pg_ctl`: `$PG_BIN`, else the newest `/usr/lib/postgresql/<v>/bin`. Throws in
 * CI, where a missing server is a broken setup rather than a reason to skip.
 */
export function postgresAvailability(env: NodeJS.ProcessEnv = process.env): PostgresAvailability {
  const candidates: string[] = [];
  if (env.PG_BIN) candidates.push(env.PG_BIN);
  try {
    const versions = fs
      .readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(path.join("/usr/lib/postgresql", v, "bin"));
  } catch {
    // No Debian-style install; only $PG_BIN is left to try.
  }
  const bin = candidates.find(
    (d) => fs.existsSync(path.join(d, "initdb")) && fs.existsSync(path.join(d, "pg_ctl")),
  );
  if (bin) return { bin };
  const reason =
    "PostgreSQL server binaries not found (install with `apt-get install -y postgresql` or set PG_BIN)";
  if (env.CI === "true" || env.CI === "1")
    throw new Error(`${reason}; CI must run the PostgreSQL tests`);
  return { skip: reason };
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether we must drop root: PostgreSQL refuses to run as root. */
function asPostgresUser(): boolean {
  return process.getuid?.() === 0;
}

function command(bin: string, args: readonly string[]): [string, string[]] {
  // runuser (util-linux) switches user without a password prompt or a login shell.
  return asPostgresUser() ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, [...args]];
}

/** Starts a fresh cluster with one database `metaflow` and returns its handle. */
export async function startPostgres(bin: string): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-pg-"));
  const data = path.join(dir, "data");
  const password = randomBytes(12).toString("hex");
  fs.writeFileSync(path.join(dir, "pwfile"), `${password}\n`);
  if (asPostgresUser()) spawnSync("chown", ["-R", "postgres:postgres", dir]);
  const [initCmd, initArgs] = command(path.join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=scram-sha-256",
    `--pwfile=${path.join(dir, "pwfile")}`,
    "--no-sync",
    "-E",
    "UTF8",
  ]);
  await run(initCmd, initArgs);
  fs.rmSync(path.join(dir, "pwfile"));
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=127.0.0.1",
    // Durability is irrelevant for a throwaway cluster; speed is not.
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
  ].join(" ");
  let running = false;
  const pgCtl = async (...args: string[]) => {
    const [cmd, argv] = command(path.join(bin, "pg_ctl"), ["-D", data, ...args]);
    await run(cmd, argv);
  };
  const start = async () => {
    await pgCtl("-l", path.join(dir, "server.log"), "-o", options, "-w", "-t", "30", "start");
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    await pgCtl("-m", "fast", "-w", "stop");
    running = false;
  };
  // If the test process dies without cleaning up, do not leave a server behind.
  const onExit = () => {
    if (!running) return;
    const [cmd, argv] = command(path.join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "stop"]);
    spawnSync(cmd, argv, { stdio: "ignore" });
  };
  process.on("exit", onExit);

  await start();
  const admin = new pg.Client({
    host: "127.0.0.1",
    port,
    user: "postgres",
    password,
    database: "postgres",
  });
  await admin.connect();
  try {
    await admin.query("CREATE DATABASE metaflow");
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/metaflow`,
    port,
    password,
    stop,
    start,
    async restart(downMs = 0) {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async destroy() {
      await stop();
      process.off("exit", onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
