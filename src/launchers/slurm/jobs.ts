/**
 * The user's Metaflow.ts jobs, found by their job name (and comment), and cancelling them: what
 * `metaflow slurm list` and `metaflow slurm kill` stand on, and what a runtime uses to stop a run.
 */
import { commandFailure, type SlurmCli } from "./cli.js";
import { phaseOf, type JobPhase } from "./states.js";
import { JOB_NAME_PREFIX, parseLabels, type JobLabels } from "./script.js";

/** One Metaflow.ts job (or array element, or the still-pending rest of an array) in the queue. */
export interface MetaflowJob {
  /** `1234`, `1234_7`, or `1234_[8-49%10]` for array elements not started yet. */
  readonly id: string;
  /** The job id to cancel it by (the array job's id for every part of an array). */
  readonly jobId: string;
  readonly labels: JobLabels;
  readonly state: string;
  readonly phase: JobPhase;
  readonly reason: string | undefined;
  readonly partition: string;
  readonly user: string;
  /** Time used so far, as Slurm prints it. */
  readonly elapsed: string;
  readonly nodes: string | undefined;
}

/** Which jobs `listJobs` returns. */
export interface ListOptions {
  /** Only this run's jobs. @default every run */
  readonly runId?: string;
  /** Only this flow's jobs. @default every flow */
  readonly flow?: string;
  /** Also jobs that ended and that slurmctld still remembers. @default false */
  readonly includeFinished?: boolean;
  /** Whose jobs (a Slurm user name). @default the user running the command */
  readonly user?: string;
}

const FIELDS = [
  "JobArrayID",
  "ArrayJobID",
  "State",
  "Reason",
  "Partition",
  "UserName",
  "TimeUsed",
  "NodeList",
  "Name",
  "Comment",
];

/** The user's Metaflow.ts jobs, pending and running (and finished ones too with `includeFinished`). */
export async function listJobs(cli: SlurmCli, options: ListOptions = {}): Promise<MetaflowJob[]> {
  await cli.check();
  const args = ["--noheader", `--Format=${FIELDS.map((f) => `${f}:|`).join(",")}`];
  args.push(options.user === undefined ? "--me" : `--user=${options.user}`);
  if (options.includeFinished) args.push("--states=all");
  const r = await cli.run("squeue", args);
  if (r.code !== 0) throw commandFailure("squeue", r);
  const jobs: MetaflowJob[] = [];
  for (const line of r.stdout.split("\n")) {
    // Each field ends with '|', the last one too.
    const f = line.replace(/\|$/, "").split("|");
    if (f.length < FIELDS.length) continue;
    const [id, arrayJobId, state, reason, partition, user, elapsed, nodes, name] = f.map((x) =>
      x.trim(),
    ) as string[];
    // The comment is last and may itself hold '|': keep the rest of the line.
    const comment = f.slice(9).join("|").trim();
    const parsed = name?.startsWith(JOB_NAME_PREFIX) ? parseLabels(name, comment) : undefined;
    const labels = parsed && elementLabels(parsed, id ?? "");
    if (!labels || !id || !state) continue;
    if (options.runId !== undefined && labels.runId !== options.runId) continue;
    if (options.flow !== undefined && labels.flow !== options.flow) continue;
    jobs.push({
      id,
      jobId: arrayJobId && /^\d+$/.test(arrayJobId) ? arrayJobId : id.replace(/_.*$/, ""),
      labels,
      state,
      phase: phaseOf(state),
      reason: reason && reason !== "None" ? reason : undefined,
      partition: partition ?? "",
      user: user ?? "",
      elapsed: elapsed ?? "",
      nodes: nodes || undefined,
    });
  }
  return jobs;
}

/** Cancels jobs or array elements (`1234`, `1234_7`); ids that already ended or are gone are skipped quietly. */
export async function cancelJobs(cli: SlurmCli, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const r = await cli.run("scancel", [...new Set(ids)]);
  if (r.code === 0) return;
  // Finished and purged jobs are what a run's cancel meets routinely; only other errors count.
  const other = r.stderr
    .split("\n")
    .filter(
      (l) =>
        l.trim() !== "" && !/already completing or completed|Invalid job id specified/i.test(l),
    );
  if (other.length > 0) throw commandFailure("scancel", { ...r, stderr: other.join("\n") });
}

/** Cancels every pending or running job of a run (or of every run, without `runId`); returns what it cancelled. */
export async function killJobs(
  cli: SlurmCli,
  options: Omit<ListOptions, "includeFinished"> = {},
): Promise<MetaflowJob[]> {
  const jobs = (await listJobs(cli, options)).filter((j) => j.phase !== "finished");
  // Cancelling the array job stops every element, the pending rest included.
  await cancelJobs(cli, [...new Set(jobs.map((j) => j.jobId))]);
  return jobs;
}

/** An array element's labels name its own task (from the array's `tasks=` comment); others as they are. */
function elementLabels(labels: JobLabels, id: string): JobLabels {
  const index = /^\d+_(\d+)$/.exec(id)?.[1];
  const { taskIds, ...rest } = labels;
  const taskId = index === undefined ? undefined : taskIds?.[Number(index)];
  return taskId === undefined ? labels : { ...rest, taskId };
}
