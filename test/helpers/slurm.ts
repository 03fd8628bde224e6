/**
 * A throwaway one-node Slurm cluster for integration tests: munged with its own key and socket,
 * slurmctld and slurmd in the foreground as root, no systemd, no cgroups, every state file in a temp
 * directory and free ports, so two test files can each run one at the same time. In CI
 * (`CI=true`) missing Slurm fails the suite; elsewhere the tests skip with a message.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./postgres.js";

/** Where the Slurm and munge daemons are, or why they cannot be used. */
export type SlurmAvailability =
  { readonly bins: Readonly<Record<Daemon, string>> } | { readonly skip: string };

type Daemon = "munged" | "slurmctld" | "slurmd" | "sbatch";

/** A running test cluster. */
export interface TestSlurm {
  /** Environment for every process that talks to the cluster: `SLURM_CONF` (the slurm.conf path). */
  readonly env: Readonly<Record<string, string>>;
  /** The cluster's directory: slurm.conf, state, spool, logs. */
  readonly dir: string;
  readonly clusterName: string;
  /** The default partition (UP). */
  readonly partition: string;
  /** A partition that is DOWN: jobs sent there stay PENDING with reason PartitionDown. */
  readonly downPartition: string;
  /** CPUs and memory (MiB) the node offers. */
  readonly cpus: number;
  readonly memoryMb: number;
  /** Runs a Slurm client command against this cluster and returns its stdout; throws on failure. */
  run(tool: string, args: readonly string[]): string;
  /** The last lines of the daemons' logs, for failure messages. */
  logs(): string;
  /** Cancels every job, stops the daemons and every process of the cluster, deletes its directory. */
  stop(): Promise<void>;
}

/** Options of `startSlurm`. */
export interface SlurmClusterOptions {
  /** CPUs the node announces (more than the machine has is fine for no-op jobs). @default 8 */
  readonly cpus?: number;
  /** Memory the node announces, in MiB. @default 8000 */
  readonly memoryMb?: number;
}

const SEARCH = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/** Finds munged, slurmctld, slurmd and sbatch; throws in CI, where a missing Slurm is a broken setup. */
export function slurmAvailability(env: NodeJS.ProcessEnv = process.env): SlurmAvailability {
  const dirs = [...(env.PATH ?? "").split(path.delimiter).filter(Boolean), ...SEARCH];
  const bins: Partial<Record<Daemon, string>> = {};
  const missing: string[] = [];
  for (const name of ["munged", "slurmctld", "slurmd", "sbatch"] as const) {
    const found = dirs.map((d) => path.join(d, name)).find((f) => fs.existsSync(f));
    if (found) bins[name] = found;
    else missing.push(name);
  }
  if (missing.length === 0) {
    if (process.getuid?.() === 0) return { bins: bins as Record<Daemon, string> };
    return skipOrThrow(
      env,
      "the test Slurm cluster runs its daemons as root, and this process is not root",
    );
  }
  return skipOrThrow(
    env,
    `Slurm not found (${missing.join(", ")} missing; install with \`apt-get install -y slurm-wlm munge\`)`,
  );
}

function skipOrThrow(env: NodeJS.ProcessEnv, reason: string): SlurmAvailability {
  if (env.CI === "true" || env.CI === "1")
    throw new Error(`${reason}; CI must run the Slurm tests`);
  return { skip: reason };
}

/** Starts a fresh cluster and waits until its node is idle (about a second). */
export async function startSlurm(
  bins: Readonly<Record<Daemon, string>>,
  options: SlurmClusterOptions = {},
): Promise<TestSlurm> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-slurm-"));
  const clusterName = `mf${randomBytes(4).toString("hex")}`;
  const cpus = options.cpus ?? 8;
  const memoryMb = options.memoryMb ?? 8000;
  const conf = path.join(dir, "slurm.conf");
  const env = { SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const cluster = { dir, conf, env, children };

  const onExit = () => killEverything(cluster);
  process.on("exit", onExit);
  try {
    const socket = await startMunge(bins.munged, dir, children);
    const ports = { ctld: await freePort(), slurmd: await freePort() };
    fs.writeFileSync(conf, slurmConf({ dir, clusterName, socket, ports, cpus, memoryMb }));
    for (const d of ["state", "spool", "log"]) fs.mkdirSync(path.join(dir, d));
    children.push(
      daemon(bins.slurmctld, ["-D", "-i"], env, path.join(dir, "log", "slurmctld.out")),
    );
    children.push(
      daemon(bins.slurmd, ["-D", "-N", "n1"], env, path.join(dir, "log", "slurmd.out")),
    );
    await waitFor(
      () =>
        /idle/.test(
          tryRun("sinfo", ["--noheader", "--Node", "--format=%T", "--partition=debug"], env),
        ),
      30_000,
      () => `the Slurm node did not become idle:\n${logs(dir)}`,
    );
  } catch (err) {
    killEverything(cluster);
    process.off("exit", onExit);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    env,
    dir,
    clusterName,
    partition: "debug",
    downPartition: "closed",
    cpus,
    memoryMb,
    run: (tool, args) => {
      const r = spawnSync(tool, args, { env: { ...process.env, ...env }, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${tool} ${args.join(" ")} failed: ${r.stderr}`);
      return r.stdout;
    },
    logs: () => logs(dir),
    async stop() {
      // Cancel first, so slurmd ends each job's processes itself; then whatever is left is swept.
      const ids = tryRun("squeue", ["--noheader", "--format=%A"], env)
        .split("\n")
        .filter((l) => /^\d+$/.test(l.trim()));
      if (ids.length > 0) spawnSync("scancel", ids, { env: { ...process.env, ...env } });
      await waitFor(
        () => tryRun("squeue", ["--noheader", "--format=%A"], env).trim() === "",
        10_000,
        () => "",
      ).catch(() => undefined);
      killEverything(cluster);
      await Promise.all(children.map((c) => exited(c)));
      process.off("exit", onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startMunge(munged: string, dir: string, children: ChildProcess[]): Promise<string> {
  // munged refuses a key readable by others and a key directory writable by others.
  const keyDir = path.join(dir, "munge-key");
  const runDir = path.join(dir, "munge");
  fs.mkdirSync(keyDir, { mode: 0o700 });
  fs.mkdirSync(runDir, { mode: 0o755 });
  const key = path.join(keyDir, "munge.key");
  fs.writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = path.join(runDir, "munge.socket");
  const args = [
    "-F",
    "-f",
    `--socket=${socket}`,
    `--key-file=${key}`,
    `--pid-file=${path.join(runDir, "munged.pid")}`,
    `--log-file=${path.join(runDir, "munged.log")}`,
    `--seed-file=${path.join(runDir, "munged.seed")}`,
  ];
  children.push(daemon(munged, args, {}, path.join(runDir, "munged.out")));
  await waitFor(
    () => fs.existsSync(socket),
    10_000,
    () => `munged did not create its socket:\n${readTail(path.join(runDir, "munged.log"))}`,
  );
  return socket;
}

interface ConfInput {
  readonly dir: string;
  readonly clusterName: string;
  readonly socket: string;
  readonly ports: { readonly ctld: number; readonly slurmd: number };
  readonly cpus: number;
  readonly memoryMb: number;
}

function slurmConf(c: ConfInput): string {
  return `# One-node test cluster written by test/helpers/slurm.ts
ClusterName=${c.clusterName}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${c.ports.ctld}
SlurmdPort=${c.ports.slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${c.socket}
StateSaveLocation=${c.dir}/state
SlurmdSpoolDir=${c.dir}/spool/%n
SlurmctldPidFile=${c.dir}/slurmctld.pid
SlurmdPidFile=${c.dir}/slurmd.pid
SlurmctldLogFile=${c.dir}/log/slurmctld.log
SlurmdLogFile=${c.dir}/log/slurmd.log
# No cgroups, no systemd: processes tracked by parent pid, tasks not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Memory is a consumable resource; jobacct_gather samples each job's memory every second and
# OverMemoryKill stops a job over its --mem (Slurm then reports it FAILED, killed by SIGKILL).
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=500
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# No slurmdbd: sacct has nothing to answer, as on many small clusters.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Start a submitted batch job at the next scheduling pass instead of up to 3 s later (the default).
SchedulerParameters=batch_sched_delay=0
# Announce the node as configured here, whatever the machine has.
SlurmdParameters=config_overrides
KillWait=2
InactiveLimit=0
NodeName=n1 NodeHostname=${os.hostname()} NodeAddr=127.0.0.1 CPUs=${c.cpus} RealMemory=${c.memoryMb} State=UNKNOWN
PartitionName=debug Nodes=n1 Default=YES MaxTime=INFINITE State=UP
PartitionName=closed Nodes=n1 MaxTime=INFINITE State=DOWN
`;
}

function daemon(
  bin: string,
  args: readonly string[],
  env: Record<string, string>,
  logFile: string,
): ChildProcess {
  const out = fs.openSync(logFile, "a");
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", out, out] });
  fs.closeSync(out);
  child.on("error", () => undefined); // reported through the readiness wait and the logs
  return child;
}

function tryRun(tool: string, args: readonly string[], env: Record<string, string>): string {
  const r = spawnSync(tool, args, {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 10_000,
  });
  return r.status === 0 ? r.stdout : "";
}

async function waitFor(
  ready: () => boolean,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Stops the daemons this helper started (by pid), then every process still carrying this cluster's
 * SLURM_CONF in its environment: slurmstepd and job processes inherit it, other clusters' do not.
 */
function killEverything(cluster: { conf: string; children: ChildProcess[] }): void {
  for (const c of cluster.children)
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  const marker = Buffer.from(`SLURM_CONF=${cluster.conf}\0`);
  let pids: string[] = [];
  try {
    pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`).includes(marker))
        process.kill(Number(pid), "SIGKILL");
    } catch {
      // The process ended meanwhile, or is not ours to read.
    }
  }
}

function logs(dir: string): string {
  return ["log/slurmctld.log", "log/slurmd.log", "log/slurmctld.out", "log/slurmd.out"]
    .map((f) => `--- ${f}\n${readTail(path.join(dir, f))}`)
    .join("\n");
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(none)";
  }
}

/** An `sbatch` on PATH that records each call's arguments before running the real one. */
export interface SbatchRecorder {
  /** `PATH` with the recording `sbatch` first (the rest of `process.env.PATH` after it). */
  readonly env: { readonly PATH: string };
  /** The submissions so far (calls with `--job-name`, not `sbatch --version`), as argument lists. */
  submissions(): string[][];
}

/** Puts a recording `sbatch` wrapper in `dir`; counting its calls is how tests see one sbatch per array. */
export function recordSbatch(dir: string, realSbatch: string): SbatchRecorder {
  const bin = path.join(dir, "recording-bin");
  const log = path.join(dir, "sbatch-calls.log");
  fs.mkdirSync(bin, { recursive: true });
  // One line per call: the arguments joined by a unit separator (the comment holds spaces).
  fs.writeFileSync(
    path.join(bin, "sbatch"),
    `#!/bin/sh\n(IFS="$(printf '\\037')"; printf '%s\\n' "$*") >> '${log}'\nexec '${realSbatch}' "$@"\n`,
    { mode: 0o755 },
  );
  return {
    env: { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` },
    submissions: () => {
      let text = "";
      try {
        text = fs.readFileSync(log, "utf8");
      } catch {
        return [];
      }
      return text
        .split("\n")
        .filter((l) => l.includes("--job-name="))
        .map((l) => l.split("\x1f"));
    },
  };
}
