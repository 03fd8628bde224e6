/**
 * Slurm, as a thin typed layer over its command-line tools: submit a job or a job array with
 * `sbatch`, follow states with `squeue` (and `sacct` where accounting exists), cancel with
 * `scancel`, find a run's jobs again by name. Slurm schedules; nothing here does.
 * @example
 * const cli = new SlurmCli();
 * const { elements } = await submitArray(cli, { labels, command: ["node", "task.js", ARRAY_INDEX], size: 50, maxConcurrent: 16 });
 * const poller = new SlurmPoller(cli, { intervalMs: 1000 });
 * const outcomes = await Promise.all(elements.map((id) => poller.follow(id)));
 * for (const o of outcomes) if (o.error) console.error(o.error.message);
 *
 * The `@slurm` options (`parseSlurmOptions`, `SlurmOptionError`, ...) are configuration: they come
 * from src/config/index.ts.
 */
export { SlurmCli, type SlurmCliOptions, type ClusterInfo, type CommandResult } from "./cli.js";
export {
  SlurmUnavailableError,
  SlurmSubmitError,
  SlurmCommandError,
  SlurmJobError,
  SlurmExitCodeError,
  SlurmSignalError,
  SlurmOutOfMemoryError,
  SlurmTimeoutError,
  SlurmNodeFailError,
  SlurmCancelledError,
  SlurmStuckPendingError,
  SlurmJobLostError,
} from "./errors.js";
export {
  ARRAY_INDEX,
  JOB_NAME_PREFIX,
  jobName,
  jobComment,
  jobScript,
  sbatchArgs,
  parseLabels,
  outputFile,
  type CommandWord,
  type JobLabels,
  type JobResources,
  type JobSpec,
  type ArraySpec,
} from "./script.js";
export { submitJob, submitArray, type SubmittedJob, type SubmittedArray } from "./submit.js";
export {
  pollStates,
  squeueStates,
  sacctStates,
  phaseOf,
  baseJobId,
  type JobState,
  type JobPhase,
} from "./states.js";
export { jobError, blockedReason, type JobContext } from "./outcome.js";
export {
  SlurmPoller,
  pollerOptions,
  type PollerOptions,
  type JobOutcome,
  type FollowOptions,
} from "./poller.js";
export { listJobs, cancelJobs, killJobs, type MetaflowJob, type ListOptions } from "./jobs.js";
