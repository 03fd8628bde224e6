/**
 * Job states as Slurm reports them: one `squeue` call for any number of jobs, `sacct` for jobs
 * slurmctld has already forgotten (when the cluster keeps accounting).
 */
import { commandFailure, type SlurmCli } from "./cli.js";

/** Where a job is in its life. */
export type JobPhase = "pending" | "running" | "finished";

/** One job's (or array element's) state. */
export interface JobState {
  /** `1234`, or `1234_7` for element 7 of array job 1234. */
  readonly id: string;
  /** Slurm's state name: `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`, ... */
  readonly state: string;
  readonly phase: JobPhase;
  /** Why the job is pending or how it ended, e.g. `PartitionDown`; undefined when Slurm says `None`. */
  readonly reason: string | undefined;
  /** The command's exit code, once finished (0 when it was killed by a signal). */
  readonly exitCode: number | undefined;
  /** The signal that killed the command, once finished, or 0. */
  readonly signal: number | undefined;
  /** Nodes the job ran on. */
  readonly nodes: string | undefined;
  readonly partition: string | undefined;
  /** Time limit as Slurm prints it (`1:00:00`, `UNLIMITED`). */
  readonly timeLimit: string | undefined;
  /** Which command reported the state. */
  readonly source: "squeue" | "sacct";
}

const PENDING_STATES = new Set([
  "PENDING",
  "REQUEUED",
  "REQUEUE_FED",
  "REQUEUE_HOLD",
  "RESV_DEL_HOLD",
  "SUSPENDED",
  "STOPPED",
  "RESIZING",
]);
const RUNNING_STATES = new Set(["RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT"]);

/** The phase of a Slurm state name; anything not pending or running is an end state. */
export function phaseOf(state: string): JobPhase {
  if (PENDING_STATES.has(state)) return "pending";
  if (RUNNING_STATES.has(state)) return "running";
  return "finished";
}

const SQUEUE_FIELDS = [
  "JobArrayID",
  "State",
  "exit_code",
  "Reason",
  "NodeList",
  "Partition",
  "TimeLimit",
];

/** The job id the `--jobs` filters take: the array job id for an element. */
export function baseJobId(id: string): string {
  return id.replace(/_.*$/, "");
}

/**
 * The current state of each job or array element in `ids`: one `squeue` call for all of them,
 * then `sacct` for those slurmctld no longer holds, when the cluster keeps accounting. Ids Slurm
 * does not know at all are absent from the map.
 */
export async function pollStates(
  cli: SlurmCli,
  ids: readonly string[],
): Promise<Map<string, JobState>> {
  const wanted = new Set(ids);
  const found = new Map<string, JobState>();
  if (wanted.size === 0) return found;
  for (const s of await squeueStates(cli, [...new Set(ids.map(baseJobId))])) {
    if (wanted.has(s.id)) found.set(s.id, s);
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0 && (await cli.check()).accounting) {
    for (const s of await sacctStates(cli, missing)) if (wanted.has(s.id)) found.set(s.id, s);
  }
  return found;
}

/** Every state `squeue` holds for these job ids, array elements one per line (`-r`), finished ones included. */
export async function squeueStates(cli: SlurmCli, jobIds: readonly string[]): Promise<JobState[]> {
  const format = SQUEUE_FIELDS.map((f) => `${f}:|`).join(",");
  const r = await cli.run("squeue", [
    "--noheader",
    "--array",
    "--states=all",
    `--jobs=${jobIds.join(",")}`,
    `--Format=${format}`,
  ]);
  if (r.code !== 0) {
    // squeue fails when every id it was given has been purged; that is an empty answer, not an error.
    if (/Invalid job id specified/i.test(r.stderr)) return [];
    throw commandFailure("squeue", r);
  }
  const states: JobState[] = [];
  for (const line of r.stdout.split("\n")) {
    if (line.trim() === "") continue;
    const [id, state, status, reason, nodes, partition, timeLimit] = line
      .split("|")
      .map((f) => f.trim());
    if (!id || !state) continue;
    const finished = phaseOf(state) === "finished";
    const wait = Number(status);
    states.push({
      id,
      state,
      phase: phaseOf(state),
      reason: reason && reason !== "None" ? reason : undefined,
      // squeue prints the raw wait status: exit code in the high byte, signal in the low bits.
      exitCode: finished && Number.isFinite(wait) ? (wait >> 8) & 0xff : undefined,
      signal: finished && Number.isFinite(wait) ? wait & 0x7f : undefined,
      nodes: nodes || undefined,
      partition: partition || undefined,
      timeLimit: timeLimit || undefined,
      source: "squeue",
    });
  }
  return states;
}

/** States from accounting (`sacct`), for jobs slurmctld has purged from memory. */
export async function sacctStates(cli: SlurmCli, ids: readonly string[]): Promise<JobState[]> {
  const out = await cli.ok("sacct", [
    "--noheader",
    "--parsable2",
    "--allocations",
    `--jobs=${ids.join(",")}`,
    "--format=JobID,State,ExitCode,Reason,NodeList,Partition,Timelimit",
  ]);
  const states: JobState[] = [];
  for (const line of out.split("\n")) {
    if (line.trim() === "") continue;
    const [id, rawState, exit, reason, nodes, partition, timeLimit] = line.split("|");
    if (!id || !rawState) continue;
    // sacct writes `CANCELLED by 1000`; the state is the first word.
    const state = rawState.split(" ")[0]!;
    const [code, signal] = (exit ?? "").split(":").map(Number);
    const finished = phaseOf(state) === "finished";
    states.push({
      id,
      state,
      phase: phaseOf(state),
      reason: reason && reason !== "None" ? reason : undefined,
      exitCode: finished ? code : undefined,
      signal: finished ? signal : undefined,
      nodes: nodes && nodes !== "None assigned" ? nodes : undefined,
      partition: partition || undefined,
      timeLimit: timeLimit || undefined,
      source: "sacct",
    });
  }
  return states;
}
