/**
 * The team setup for integration tests and benchmarks: s3rver, a throwaway PostgreSQL cluster and a
 * `metaflow service` process on top of it, started together and stopped together, plus the
 * environment that points a `metaflow` process (or `openBackends`) at them, and `Workdir`, one
 * user's project directory where the real CLI runs.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { postgresAvailability, startPostgres, type TestPostgres } from "./postgres.js";
import { s3ServerAvailability, startS3Server, type TestS3Server } from "./s3server.js";
import { startServiceProcess, type ServiceProcess } from "./service.js";

/** Why the S3 and the service setups cannot run here (undefined when they can). Throws in CI. */
export function remoteAvailability(env: NodeJS.ProcessEnv = process.env): {
  readonly s3?: string;
  readonly postgres?: string;
} {
  const s3 = s3ServerAvailability(env).skip;
  const pgAvail = postgresAvailability(env);
  return { ...(s3 ? { s3 } : {}), ...("skip" in pgAvail ? { postgres: pgAvail.skip } : {}) };
}

/** Options of `startRemoteStack`. */
export interface RemoteStackOptions {
  /** Start PostgreSQL and the service too (not only s3rver). @default true */
  readonly service?: boolean;
  /** The service's `--heartbeat-timeout`. @default 60 */
  readonly heartbeatTimeoutSeconds?: number;
}

/** A running s3rver (+ PostgreSQL + service). */
export interface RemoteStack {
  readonly s3: TestS3Server;
  readonly pg?: TestPostgres;
  readonly service?: ServiceProcess;
  readonly token: string;
  /**
   * Environment for a `metaflow` process: S3 at `s3://<bucket>/<prefix>`, a cache under
   * `cacheDir`, the service as metadata provider when `metadata` is `"service"`, and an empty
   * config directory so no user config file leaks in.
   */
  env(options: { prefix: string; cacheDir: string; metadata: "local" | "service" }): Record<string, string>;
  /** Restarts the service process on the same port (PostgreSQL stays up). */
  restartService(): Promise<void>;
  /** Stops everything that was started; safe to call twice and after a partial start. */
  stop(): Promise<void>;
}

/** Starts s3rver, then (unless `service: false`) PostgreSQL and the service; cleans up what started if a later part fails. */
export async function startRemoteStack(options: RemoteStackOptions = {}): Promise<RemoteStack> {
  const token = randomBytes(24).toString("hex");
  const configHome = fs.mkdtempSync(path.join(os.tmpdir(), "mf-cfg-"));
  let s3: TestS3Server | undefined;
  let pg: TestPostgres | undefined;
  let service: ServiceProcess | undefined;
  const stop = async (): Promise<void> => {
    const problems: unknown[] = [];
    for (const step of [() => service?.stop(), () => pg?.destroy(), () => s3?.destroy()]) {
      try {
        await step();
      } catch (err) {
        problems.push(err);
      }
    }
    service = undefined;
    pg = undefined;
    s3 = undefined;
    fs.rmSync(configHome, { recursive: true, force: true });
    if (problems.length > 0) throw problems[0];
  };
  try {
    s3 = await startS3Server();
    if (options.service !== false) {
      const avail = postgresAvailability();
      if ("skip" in avail) throw new Error(avail.skip);
      pg = await startPostgres(avail.bin);
      service = await startServiceProcess({
        databaseUrl: pg.url,
        token,
        heartbeatTimeoutSeconds: options.heartbeatTimeoutSeconds ?? 60,
      });
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  // A test process that dies without cleaning up must not leave the service behind (s3rver and
  // PostgreSQL have hooks of their own).
  process.once("exit", () => service?.child.kill("SIGKILL"));
  const heartbeatTimeoutSeconds = options.heartbeatTimeoutSeconds ?? 60;
  const stack: RemoteStack = {
    get s3() {
      return s3!;
    },
    get pg() {
      return pg;
    },
    get service() {
      return service;
    },
    token,
    env({ prefix, cacheDir, metadata }) {
      const out: Record<string, string> = {
        ...s3!.env(`s3://${s3!.bucket}/${prefix}`),
        METAFLOW_S3_CACHE_DIR: cacheDir,
        METAFLOW_HOME: configHome,
        METAFLOW_DEFAULT_METADATA: metadata,
      };
      if (metadata === "service") {
        if (!service) throw new Error("the stack was started without the service");
        out.METAFLOW_SERVICE_URL = service.url;
        out.METAFLOW_SERVICE_AUTH_TOKEN = token;
      }
      return out;
    },
    async restartService() {
      if (!service || !pg) throw new Error("the stack was started without the service");
      const port = Number(new URL(service.url).port);
      await service.stop();
      service = await startServiceProcess({ databaseUrl: pg.url, token, port, heartbeatTimeoutSeconds });
    },
    stop,
  };
  return stack;
}
