/**
 * What a job's state means for the task: success, a clear error for each way a job ends badly, and
 * which PENDING reasons mean the job will never start as it is.
 */
import * as fs from "node:fs";
import {
  SlurmCancelledError,
  SlurmExitCodeError,
  SlurmJobError,
  SlurmNodeFailError,
  SlurmOutOfMemoryError,
  SlurmSignalError,
  SlurmTimeoutError,
} from "./errors.js";
import type { JobState } from "./states.js";

/** What is known about a job besides its state, to explain a failure better. */
export interface JobContext {
  /** The job's stderr file, when the submitting host can read it (a shared filesystem, one node). */
  readonly stderrFile?: string;
  /** The memory the job asked for, in MiB. */
  readonly memoryMb?: number;
}

/**
 * The error for a finished job, or undefined when it succeeded (COMPLETED with exit code 0).
 * On clusters without cgroups Slurm stops a job over its memory with SIGKILL and reports it as
 * FAILED; slurmstepd then writes "Exceeded job memory limit" into the job's stderr, which is read
 * when `context.stderrFile` is readable.
 */
export function jobError(s: JobState, context: JobContext = {}): SlurmJobError | undefined {
  switch (s.state) {
    case "COMPLETED":
      if ((s.exitCode ?? 0) === 0) return undefined;
      return new SlurmExitCodeError(s.id, s.exitCode ?? 0, EXIT_HINT);
    case "OUT_OF_MEMORY":
      return new SlurmOutOfMemoryError(
        s.id,
        s.state,
        context.memoryMb ? `the job asked for ${context.memoryMb} MiB` : "",
      );
    case "TIMEOUT":
      return new SlurmTimeoutError(s.id, s.timeLimit);
    case "NODE_FAIL":
      return new SlurmNodeFailError(s.id, s.nodes);
    case "CANCELLED":
      return new SlurmCancelledError(s.id);
    case "FAILED":
      return failed(s, context);
    default:
      return new SlurmJobError(
        "slurm-job",
        s.id,
        s.state,
        `Slurm job ${s.id} ended in state ${s.state}${s.reason ? ` (reason ${s.reason})` : ""}. ${OTHER_STATES[s.state] ?? "See `scontrol show job` while Slurm still holds it, or `sacct -j` on clusters with accounting."}`,
      );
  }
}

const EXIT_HINT =
  "The task's own logs say why (`metaflow logs` on the task); if there are none, the task did not start: check that Node ≥ 20 and metaflow-ts are installed on the compute nodes (METAFLOW_SLURM_SETUP can load them).";

const OTHER_STATES: Readonly<Record<string, string>> = {
  BOOT_FAIL:
    "The node could not be booted for it; add @retry to resubmit, and tell the cluster admin if it repeats.",
  DEADLINE: "It reached its deadline (--deadline) before it could finish.",
  PREEMPTED: "A higher-priority job took its resources; add @retry to resubmit it.",
  REVOKED: "Another cluster of the federation ran it.",
  SPECIAL_EXIT: "An epilog put it in a special state; ask the cluster admin.",
};

function failed(s: JobState, context: JobContext): SlurmJobError {
  const memoryNote = memoryEvidence(context.stderrFile);
  if (memoryNote) return new SlurmOutOfMemoryError(s.id, "FAILED", memoryNote);
  if (s.signal) {
    const hint =
      s.signal === 9
        ? `Something sent SIGKILL: on clusters without cgroups this is how Slurm stops a job that uses more than its memory request${context.memoryMb ? ` (${context.memoryMb} MiB)` : ""}, so raise @resources({ memory }) if the step needs more; otherwise ask who killed it.`
        : "The task's own logs may say why (`metaflow logs` on the task).";
    return new SlurmSignalError(s.id, s.signal, hint);
  }
  return new SlurmExitCodeError(s.id, s.exitCode ?? 1, EXIT_HINT);
}

/** Slurm's own words in the job's stderr when its memory enforcement killed the job, or undefined. */
function memoryEvidence(file: string | undefined): string | undefined {
  if (!file || file === "/dev/null") return undefined;
  let text: string;
  try {
    // The tail is enough: slurmstepd writes its verdict last.
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(length);
      fs.readSync(fd, buf, 0, length, size - length);
      text = buf.toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const m = /slurmstepd[^\n]*exceeded (?:job |step )?memory limit \((\d+) > (\d+)\)/i.exec(text);
  if (m)
    return `slurmstepd saw ${mib(m[1]!)} MiB in use, over the limit of ${mib(m[2]!)} MiB, and killed it`;
  if (/slurmstepd[^\n]*(Exceeded job memory limit|oom-kill event)/i.test(text))
    return "slurmstepd reported that it exceeded its memory limit";
  return undefined;
}

function mib(bytes: string): number {
  return Math.round(Number(bytes) / 2 ** 20);
}

/**
 * PENDING reasons that will not clear by waiting for other jobs: each needs an admin, or a different
 * request. A job pending for one of these longer than the stuck timeout fails.
 */
const BLOCKED_REASONS: Readonly<Record<string, string>> = {
  PartitionDown:
    "Its partition is DOWN: choose another with @slurm({ partition }) (see `sinfo`) or ask the cluster admin to bring it up.",
  PartitionInactive:
    "Its partition is INACTIVE: choose another with @slurm({ partition }) (see `sinfo`).",
  PartitionConfig:
    "It asks for more than any node of its partition has (CPUs, memory, GPUs or nodes): lower @resources or choose a bigger partition (`sinfo -o '%P %c %m %G'`).",
  PartitionNodeLimit:
    "It asks for more nodes than its partition allows: lower the request or choose another partition.",
  PartitionTimeLimit:
    "Its time limit is above the partition's MaxTime: lower @slurm({ time }) (see `scontrol show partition`).",
  BadConstraints:
    "No node has the features it asks for: fix @slurm({ constraint }) (see `sinfo -o '%N %f'`).",
  InvalidAccount:
    "Its account is not valid: fix @slurm({ account }) or METAFLOW_SLURM_ACCOUNT (see `sacctmgr show assoc user=$USER`).",
  InvalidQOS: "Its QOS is not valid: fix @slurm({ qos }) or METAFLOW_SLURM_QOS.",
  AccountNotAllowed: "Its account may not use this partition: choose another partition or account.",
  QOSNotAllowed: "Its QOS may not use this partition: choose another partition or QOS.",
  DependencyNeverSatisfied: "A job it depends on failed, so it can never start.",
  JobHeldAdmin: "An admin holds it: ask them to release it (`scontrol release`).",
  JobHeldUser: "It is held: release it with `scontrol release <id>`, or cancel the run.",
  ReqNodeNotAvail:
    "The nodes it needs are down, drained or reserved: choose another partition, or ask the cluster admin.",
  NodeDown: "A node it needs is down: ask the cluster admin, or choose another partition.",
  FrontEndDown: "The cluster's front end is down: ask the cluster admin.",
  "launch failed requeued held":
    "Slurm could not launch it on its node and held it: ask the cluster admin to check the node.",
};

/** Why a PENDING job will not start as it is, or undefined when it is only waiting its turn. */
export function blockedReason(s: JobState): string | undefined {
  if (s.phase !== "pending" || !s.reason) return undefined;
  const key = Object.keys(BLOCKED_REASONS).find(
    (k) => s.reason === k || s.reason!.startsWith(`${k},`) || s.reason!.startsWith(`${k} `),
  );
  return key === undefined ? undefined : BLOCKED_REASONS[key];
}
