/**
 * Runs the Slurm command-line tools (`sbatch`, `squeue`, `sacct`, `scancel`, `scontrol`) as child
 * processes: no shell, a time limit, and clear errors when Slurm is missing or cannot be reached.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { SlurmCommandError, SlurmUnavailableError } from "./errors.js";

/** What a Slurm command printed and how it exited. */
export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

/** Options of a `SlurmCli`. */
export interface SlurmCliOptions {
  /** Environment for the commands (e.g. `SLURM_CONF`), added over `process.env`. @default {} */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory holding the Slurm binaries. @default found on PATH */
  readonly binDir?: string;
  /** Stop a command that has not answered after this many milliseconds. @default 60000 */
  readonly timeoutMs?: number;
}

/** What `check()` learned about the cluster. */
export interface ClusterInfo {
  /** e.g. `22.05.8`. */
  readonly version: string;
  readonly clusterName: string;
  /** Whether `sacct` can answer (a slurmdbd is configured). */
  readonly accounting: boolean;
  /** Seconds slurmctld keeps a finished job visible to `squeue`. */
  readonly minJobAgeSeconds: number;
  /** Largest array index plus one (`MaxArraySize`). */
  readonly maxArraySize: number;
}

/** A handle on one cluster's command-line tools. */
export class SlurmCli {
  readonly env: Readonly<Record<string, string | undefined>>;
  private readonly binDir: string | undefined;
  private readonly timeoutMs: number;
  private info: Promise<ClusterInfo> | undefined;

  constructor(options: SlurmCliOptions = {}) {
    this.env = { ...process.env, ...(options.env ?? {}) };
    this.binDir = options.binDir;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Runs `tool args...` and returns its output whatever its exit code; throws only when it cannot run. */
  run(tool: string, args: readonly string[], input?: string): Promise<CommandResult> {
    const file = this.binDir ? `${this.binDir}/${tool}` : tool;
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        env: this.env as NodeJS.ProcessEnv,
        stdio: ["pipe", "pipe", "pipe"],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const timer = setTimeout(() => child.kill("SIGKILL"), this.timeoutMs);
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      child.on("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(e.code === "ENOENT" ? notInstalled(tool) : e);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString("utf8");
        if (signal === "SIGKILL" && code === null) {
          reject(
            new SlurmCommandError(
              `${tool} ${args.join(" ")}`,
              null,
              `no answer within ${this.timeoutMs / 1000} s ${stderr}`,
            ),
          );
          return;
        }
        resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr, code });
      });
      child.stdin.on("error", () => undefined); // a tool that exits early closes its stdin
      child.stdin.end(input ?? "");
    });
  }

  /** Runs a command that must succeed; a failure becomes a `SlurmCommandError` (or `SlurmUnavailableError`). */
  async ok(tool: string, args: readonly string[], input?: string): Promise<string> {
    const r = await this.run(tool, args, input);
    if (r.code !== 0) throw commandFailure(`${tool} ${args.join(" ")}`, r);
    return r.stdout;
  }

  /**
   * Checks that Slurm is installed and its controller answers, once per handle, and returns what the
   * layer needs to know about the cluster.
   */
  check(): Promise<ClusterInfo> {
    this.info ??= this.readInfo();
    // A failed check is not remembered: the admin may fix the cluster and the user try again.
    this.info.catch(() => (this.info = undefined));
    return this.info;
  }

  private async readInfo(): Promise<ClusterInfo> {
    // Slurm's tools retry a missing SLURM_CONF for a minute before giving up; say so at once.
    const conf = this.env.SLURM_CONF;
    if (conf && !fs.existsSync(conf)) {
      throw new SlurmUnavailableError(
        `SLURM_CONF=${conf} names a file that does not exist. Point it at the cluster's slurm.conf, or unset it on a node where Slurm finds its configuration itself.`,
      );
    }
    const version = await this.run("sbatch", ["--version"]);
    if (version.code !== 0) throw commandFailure("sbatch --version", version);
    const config = await this.ok("scontrol", ["show", "config"]);
    const value = (key: string) =>
      new RegExp(`^${key}\\s*=\\s*(.*)$`, "m").exec(config)?.[1]?.trim();
    return {
      version: version.stdout.trim().replace(/^slurm(-wlm)?\s+/, ""),
      clusterName: value("ClusterName") ?? "",
      accounting: !/accounting_storage\/none/.test(
        value("AccountingStorageType") ?? "accounting_storage/none",
      ),
      minJobAgeSeconds: Number.parseInt(value("MinJobAge") ?? "300", 10) || 300,
      maxArraySize: Number.parseInt(value("MaxArraySize") ?? "1001", 10) || 1001,
    };
  }
}

function notInstalled(tool: string): SlurmUnavailableError {
  return new SlurmUnavailableError(
    `The Slurm command \`${tool}\` is not installed on this machine (not found on PATH). Run Metaflow.ts on a host where the Slurm client tools work (a login node), or install them (Debian/Ubuntu: apt-get install slurm-client) with the cluster's slurm.conf.`,
  );
}

/** Turns a failed command into the most useful error: no configuration and no controller are the user's to fix. */
export function commandFailure(command: string, r: CommandResult): Error {
  const text = r.stderr.trim();
  if (
    /Could not establish a configuration source|Unable to process configuration file|could not open configuration/i.test(
      text,
    )
  ) {
    return new SlurmUnavailableError(
      `Slurm has no configuration on this machine (\`${command}\`: ${firstLine(text)}). Point SLURM_CONF at the cluster's slurm.conf, or run on a node of the cluster.`,
    );
  }
  if (
    /Unable to contact slurm controller|Socket timed out|Connection refused|Zero Bytes were transmitted/i.test(
      text,
    )
  ) {
    return new SlurmUnavailableError(
      `The Slurm controller does not answer (\`${command}\`: ${firstLine(text)}). Check \`scontrol ping\`; ask the cluster admin if slurmctld is down.`,
    );
  }
  if (/Munge|authentication/i.test(text)) {
    return new SlurmUnavailableError(
      `Slurm cannot authenticate this machine (\`${command}\`: ${firstLine(text)}). munged must run here with the cluster's key.`,
    );
  }
  return new SlurmCommandError(command, r.code, text);
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? ""
  );
}
