/**
 * Starts `metaflow service` as a real child process (from the TypeScript sources, so no build is
 * needed) and waits until it prints its URL; keeps everything it logs for later checks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A running service process. */
export interface ServiceProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code once the process is gone. */
  stop(): Promise<number | null>;
}

/** Options for `startServiceProcess`. */
export interface ServiceProcessOptions {
  readonly databaseUrl: string;
  /** The shared token; without one the service accepts per-user tokens only. */
  readonly token?: string;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** @default 60 */
  readonly heartbeatTimeoutSeconds?: number;
}

/** Spawns the service and resolves once it listens; rejects with its output if it exits first. */
export function startServiceProcess(opts: ServiceProcessOptions): Promise<ServiceProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      path.join(repo, "src/cli/main.ts"),
      "service",
      "--port",
      String(opts.port ?? 0),
      "--database-url",
      opts.databaseUrl,
      "--heartbeat-timeout",
      String(opts.heartbeatTimeoutSeconds ?? 60),
    ],
    {
      cwd: repo,
      env: envWithToken(opts.token),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      child.stdout!.off("data", onData);
      resolve({
        url: m[1]!,
        child,
        output: () => out,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          return exited;
        },
      });
    };
    child.stdout!.on("data", onData);
    void exited.then((code) =>
      reject(new Error(`metaflow service exited with ${code} before listening:\n${out}`)),
    );
  });
}

function envWithToken(token: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.METAFLOW_SERVICE_AUTH_TOKEN;
  delete env.METAFLOW_SERVICE_AUTH_KEY;
  if (token !== undefined) env.METAFLOW_SERVICE_AUTH_TOKEN = token;
  return env;
}
