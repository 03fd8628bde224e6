/**
 * Errors of the Slurm layer: one class per condition a user must act on differently. Each message
 * names the job id and its Slurm state and says what to do next.
 */
import { MetaflowError } from "../../errors.js";

/** The Slurm commands are not installed, or cannot reach a cluster. */
export class SlurmUnavailableError extends MetaflowError {
  constructor(message: string) {
    super("slurm-unavailable", "Slurm is not available", message);
  }
}

/** `sbatch` refused the job: an unknown partition, a request no node can meet, a bad account... */
export class SlurmSubmitError extends MetaflowError {
  constructor(
    /** What Slurm said, without its `sbatch: error:` prefixes. */
    readonly slurmMessage: string,
    message: string,
  ) {
    super("slurm-submit", "Slurm refused the job", message);
  }
}

/** A Slurm command (`squeue`, `scancel`, ...) failed for a reason other than the job itself. */
export class SlurmCommandError extends MetaflowError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(
      "slurm-command",
      `${command} failed`,
      `The Slurm command \`${command}\` failed${exitCode === null ? "" : ` (exit ${exitCode})`}: ${stderr.trim() || "no message"}. Check that slurmctld is up (\`scontrol ping\`) and that SLURM_CONF points at the cluster's slurm.conf.`,
    );
  }
}

/** A job (or array element) ended without success, or cannot start; the subclasses say how. */
export class SlurmJobError extends MetaflowError {
  constructor(
    code: string,
    /** `1234` or, for an array element, `1234_7`. */
    readonly jobId: string,
    /** Slurm's state name, e.g. `TIMEOUT`, or `PENDING` for a job that cannot start. */
    readonly state: string,
    message: string,
  ) {
    super(code, `Slurm job ${jobId} ${state}`, message);
  }
}

/** The job's command exited with a non-zero code. */
export class SlurmExitCodeError extends SlurmJobError {
  constructor(
    jobId: string,
    readonly exitCode: number,
    hint: string,
  ) {
    super(
      "slurm-exit",
      jobId,
      "FAILED",
      `Slurm job ${jobId} FAILED: its command exited with code ${exitCode}. ${hint}`,
    );
  }
}

/** The job was killed by a signal it did not expect (not a time limit, not a cancel). */
export class SlurmSignalError extends SlurmJobError {
  constructor(
    jobId: string,
    readonly signal: number,
    hint: string,
  ) {
    super(
      "slurm-signal",
      jobId,
      "FAILED",
      `Slurm job ${jobId} FAILED: it was killed by signal ${signal}${signal === 9 ? " (SIGKILL)" : ""}. ${hint}`,
    );
  }
}

/** The job used more memory than it asked for and Slurm stopped it. */
export class SlurmOutOfMemoryError extends SlurmJobError {
  constructor(jobId: string, state: string, detail: string) {
    super(
      "slurm-oom",
      jobId,
      state,
      `Slurm job ${jobId} ran out of memory (${state}${detail ? `: ${detail}` : ""}). Ask for more with @resources({ memory: MiB }) on the step, or make the step use less.`,
    );
  }
}

/** The job ran past its time limit. */
export class SlurmTimeoutError extends SlurmJobError {
  constructor(jobId: string, timeLimit: string | undefined) {
    super(
      "slurm-timeout",
      jobId,
      "TIMEOUT",
      `Slurm job ${jobId} was stopped at its time limit${timeLimit ? ` (${timeLimit})` : ""} (TIMEOUT). Give the step more time with @slurm({ time: "HH:MM:SS" }) or METAFLOW_SLURM_TIME, within the partition's MaxTime (\`scontrol show partition\`).`,
    );
  }
}

/** The node running the job failed. */
export class SlurmNodeFailError extends SlurmJobError {
  constructor(jobId: string, nodes: string | undefined) {
    super(
      "slurm-node-fail",
      jobId,
      "NODE_FAIL",
      `Slurm job ${jobId} was lost because its node${nodes ? ` ${nodes}` : ""} failed (NODE_FAIL). This is not the step's fault: add @retry to the step to resubmit it, and tell the cluster admin if it repeats.`,
    );
  }
}

/** The job was cancelled (`scancel`, an admin, a failed dependency, a preemption). */
export class SlurmCancelledError extends SlurmJobError {
  constructor(jobId: string) {
    super(
      "slurm-cancelled",
      jobId,
      "CANCELLED",
      `Slurm job ${jobId} was CANCELLED (by scancel, \`metaflow slurm kill\`, an admin or a preemption). Resume the run to submit it again: metaflow resume FLOW --origin-run-id RUN.`,
    );
  }
}

/** The job waits for something that will not happen without a change: it will never start as is. */
export class SlurmStuckPendingError extends SlurmJobError {
  constructor(
    jobId: string,
    /** Slurm's reason, e.g. `PartitionDown`. */
    readonly reason: string,
    explanation: string,
    waitedSeconds: number,
  ) {
    super(
      "slurm-stuck",
      jobId,
      "PENDING",
      `Slurm job ${jobId} cannot start: it has been PENDING for ${Math.round(waitedSeconds)} s with reason ${reason}. ${explanation} (Jobs that wait for a reason like this fail after METAFLOW_SLURM_STUCK_TIMEOUT seconds.)`,
    );
  }
}

/** Slurm no longer knows the job: it ended long enough ago to be purged, and the cluster keeps no accounting. */
export class SlurmJobLostError extends SlurmJobError {
  constructor(jobId: string) {
    super(
      "slurm-lost",
      jobId,
      "UNKNOWN",
      `Slurm job ${jobId} is no longer known to slurmctld (it ended more than MinJobAge ago) and the cluster keeps no accounting (sacct) to ask. The attempt's own record says whether the task succeeded.`,
    );
  }
}

/** Tasks on the compute nodes could not reach the run's datastore or metadata as configured. */
export class SlurmDatastoreError extends MetaflowError {
  constructor(
    /** Each problem, with what to configure. */
    readonly problems: readonly string[],
  ) {
    super(
      "slurm-datastore",
      "The Slurm compute nodes cannot reach this run's datastore",
      `Nothing was submitted: ${problems.join("\n")}`,
    );
  }
}
