/**
 * A throwaway S3-compatible server for integration tests: `s3rver` (an npm devDependency) in its own
 * process on a free loopback port, with a temp data directory and one bucket. It runs as a separate
 * process so `restart()` drops connections the way a real server restart does. In CI (`CI=true`) a
 * server that cannot start fails the suite; it is never a reason to skip.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** s3rver accepts exactly this key pair (it checks request signatures). */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

/** A running test server. */
export interface TestS3Server {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly port: number;
  /** The bucket created at start. */
  readonly bucket: string;
  /** The server's data directory. */
  readonly dir: string;
  /**
   * Environment variables that point Metaflow.ts at this server with `root` (default
   * `s3://<bucket>/metaflow`) as the datastore root; merge them into a child process's env.
   */
  env(root?: string): Record<string, string>;
  /** Kills the server (SIGKILL: open connections are dropped mid-transfer). */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops the server, waits `downMs`, and starts it again. */
  restart(downMs?: number): Promise<void>;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

/** The s3rver CLI script, or undefined when the package is not installed. */
function s3rverBin(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve("s3rver/package.json")), "bin", "s3rver.js");
  } catch {
    return undefined;
  }
}

/**
 * Whether the tests can start s3rver: `{ skip }` explains why not outside CI; in CI a missing
 * s3rver throws, because there it is a broken setup.
 */
export function s3ServerAvailability(env: NodeJS.ProcessEnv = process.env): {
  readonly skip?: string;
} {
  if (s3rverBin()) return {};
  const reason = "s3rver is not installed (run `npm install`; it is a devDependency)";
  if (env.CI === "true" || env.CI === "1") throw new Error(`${reason}; CI must run the S3 tests`);
  return { skip: reason };
}

async function freePort(): Promise<number> {
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

const running = new Set<ChildProcess>();
// A test process that dies without cleaning up must not leave servers behind.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts s3rver on a free loopback port with a fresh data directory and one bucket (default `metaflow-test`). */
export async function startS3Server(options: { bucket?: string } = {}): Promise<TestS3Server> {
  const bin = s3rverBin();
  if (!bin) throw new Error("s3rver is not installed (run `npm install`; it is a devDependency)");
  const bucket = options.bucket ?? "metaflow-test";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-s3rver-"));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(
      process.execPath,
      // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
      [
        "--openssl-legacy-provider",
        bin,
        "-d",
        dir,
        "-a",
        "127.0.0.1",
        "-p",
        String(port),
        "-s",
        "--configure-bucket",
        bucket,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    running.add(proc);
    child = proc;
    try {
      await waitForListening(proc, port);
    } catch (err) {
      proc.kill("SIGKILL");
      running.delete(proc);
      child = undefined;
      throw err;
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGKILL");
      await exited;
    }
    running.delete(proc);
  };

  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    bucket,
    dir,
    env: (root = `s3://${bucket}/metaflow`) => ({
      METAFLOW_DEFAULT_DATASTORE: "s3",
      METAFLOW_DATASTORE_SYSROOT_S3: root,
      METAFLOW_S3_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: "us-east-1",
    }),
    stop,
    start,
    restart: async (downMs = 500) => {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    destroy: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once s3rver prints its "listening" line; rejects with its output if it exits or takes over 20 s. */
function waitForListening(proc: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/listening on/i.test(output)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(
        new Error(`s3rver on port ${port} exited with code ${code} before listening:\n${output}`),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`s3rver on port ${port} did not start within 20 s:\n${output}`));
    }, 20_000);
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.stdout?.off("data", onData);
      proc.stderr?.off("data", onData);
      proc.off("exit", onExit);
      // Keep draining the pipes so a chatty server never blocks on a full pipe.
      proc.stdout?.resume();
      proc.stderr?.resume();
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", onExit);
  });
}
