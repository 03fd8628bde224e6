/**
 * The `batch` launcher: `metaflow run` sends a `@batch` step's attempts to AWS Batch, as Metaflow
 * does. Each attempt is a Batch job running `metaflow task` (the same entrypoint a Slurm job or a
 * deployed state runs) in the step's image; the task records its attempt and stores its logs. The
 * launcher shows those logs while the job runs and reads the outcome from the metadata once it has
 * ended, as the Slurm launcher does (remote-attempt.ts). It needs what the job needs — the S3
 * datastore, the metadata service, a queue and an image — and checks them before the run is
 * recorded (`batchPreflight`). The Batch calls are thin SDK calls (batch-jobs.ts); the tests run
 * them against a local stand-in of the Batch API.
 */
import type { PlainError } from "../errors.js";
import type { BatchOptions } from "../decorators/batch.js";
import type { Backends } from "../backends.js";
import { MetaflowError } from "../errors.js";
import {
  batchClient,
  batchJobSettings,
  containerSettings,
  ensureJobDefinition,
  jobDefinitionFor,
  resourceRequirements,
  type BatchSettingProblem,
  type BatchSettingsRequest,
} from "./batch-jobs.js";
import {
  attemptLogTail,
  outcomeFromRecord,
  readAttempt,
  unreadableRecord,
  type AttemptEntry,
  type LogTail,
} from "./remote-attempt.js";
import { remoteTaskArgs } from "./remote-task.js";
import type {
  AttemptHandle,
  AttemptListener,
  AttemptOutcome,
  AttemptRequest,
  LauncherContext,
  PreflightContext,
  TaskLauncher,
} from "./types.js";

/** How often the jobs' states are asked for (one DescribeJobs call for all of them). */
const POLL_MS = 1000;
/** How often the logs of running jobs are read (an S3 log object is read whole each time). */
const TAIL_MS = 3000;
/** Batch's shortest attempt duration. */
const MIN_TIMEOUT_SECONDS = 60;

interface Running {
  readonly request: AttemptRequest;
  readonly listener: AttemptListener;
  /** The logs the task stores, shown while its job runs and read to the end when it ends. */
  readonly tail: LogTail;
  jobId?: string;
  /** Batch last said the job is RUNNING. */
  running: boolean;
  /** Cancelled: the job is being terminated and the attempt settled from its record. */
  stopping: boolean;
  settled: boolean;
}

/** Runs attempts as AWS Batch jobs. */
export class BatchLauncher implements TaskLauncher {
  readonly kind = "batch";
  readonly remote = true;
  private readonly running = new Set<Running>();
  private timer: NodeJS.Timeout | undefined;
  private tailedAt = 0;

  constructor(private readonly context: LauncherContext) {}

  tryLaunch(request: AttemptRequest, listener: AttemptListener): AttemptHandle | undefined {
    // Batch queues jobs itself; --max-workers bounds how many this run has submitted at once.
    if (this.running.size >= this.context.maxWorkers) return undefined;
    const r: Running = {
      request,
      listener,
      tail: attemptLogTail(this.context.backends.storage, request.spec, (stream, line) =>
        listener.output(stream, line),
      ),
      running: false,
      stopping: false,
      settled: false,
    };
    this.running.add(r);
    // No job exists, so nothing recorded the attempt: the scheduler records it.
    this.submit(r).catch((err: unknown) =>
      this.finish(r, {
        ok: false,
        error: batchError((err as Error).message ?? String(err)),
        unrecorded: "attempt",
      }),
    );
    return { cancel: () => void this.terminate(r) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.running].map((r) => this.terminate(r)));
    if (this.timer) clearTimeout(this.timer);
  }

  private async submit(r: Running): Promise<void> {
    const { spec, plan } = r.request;
    const { config } = this.context.backends;
    const options = plan.launcher.options as BatchOptions;
    // The preflight checked this before the run was recorded; a launcher made some other way checks here.
    const checked = batchJobSettings(config, settingsRequest(this.context.backends, options));
    if (!checked.ok) throw new BatchSettingsError([spec.step], checked.problem);
    const { queue, image } = checked.settings;
    const container = containerSettings(config, checked.settings);
    const { definition } = jobDefinitionFor(
      `metaflow-ts-${spec.flowName}`,
      {
        queue,
        image,
        ...(config.deploy.batchJobRole.value ? { iamRole: config.deploy.batchJobRole.value } : {}),
        ...(config.deploy.batchExecutionRole.value
          ? { executionRole: config.deploy.batchExecutionRole.value }
          : {}),
      },
      options,
      container.environment,
      container.secrets,
    );
    let jobDefinition: string;
    try {
      jobDefinition = await ensureJobDefinition(definition);
    } catch (err) {
      throw new Error(
        `could not register the AWS Batch job definition ${definition.name}: ${(err as Error).message}`,
      );
    }
    const { m, client } = await batchClient();
    const out = await client.send(
      new m.SubmitJobCommand({
        jobName: `${spec.flowName}-${spec.runId}-${spec.step}-${spec.taskId}-${spec.attempt}`
          .replace(/[^A-Za-z0-9_-]/g, "-")
          .slice(0, 128),
        jobQueue: queue,
        jobDefinition,
        containerOverrides: {
          command: ["metaflow", "task", ...remoteTaskArgs(spec, { caught: true })],
          environment: Object.entries(plan.env).map(([name, value]) => ({ name, value })),
          // @batch's cpu, memory and gpu are in plan.resources: its plan hook took the larger of
          // them and @resources'. Unset ones get Batch's defaults, as in a deployed flow.
          resourceRequirements: resourceRequirements({
            cpu: plan.resources.cpu ?? 1,
            memory: plan.resources.memoryMb ?? 4096,
            gpu: plan.resources.gpu ?? 0,
          }).map((x) => ({ type: x.Type as never, value: x.Value })),
        },
        ...(plan.timeoutMs !== undefined
          ? {
              timeout: {
                attemptDurationSeconds: Math.max(
                  MIN_TIMEOUT_SECONDS,
                  Math.ceil(plan.timeoutMs / 1000),
                ),
              },
            }
          : {}),
        tags: { "metaflow-ts:run": `${spec.flowName}/${spec.runId}` },
      }),
    );
    r.jobId = out.jobId;
    if (r.settled || r.stopping) {
      // Cancelled while it was being submitted: the attempt is settled, the job must not run.
      await this.terminateJob(out.jobId);
      return;
    }
    r.listener.started(`batch job ${out.jobId}`);
    this.schedulePoll();
  }

  private schedulePoll(): void {
    if (this.timer || this.running.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll()
        .catch((err: unknown) =>
          this.context.say(
            "stderr",
            `AWS Batch: could not read job states (${(err as Error).message}); trying again`,
          ),
        )
        .finally(() => this.schedulePoll());
    }, POLL_MS);
  }

  private async poll(): Promise<void> {
    const byId = new Map(
      [...this.running].filter((r) => r.jobId && !r.settled).map((r) => [r.jobId!, r]),
    );
    if (byId.size === 0) return;
    const { m, client } = await batchClient();
    const ids = [...byId.keys()];
    for (let i = 0; i < ids.length; i += 100) {
      const out = await client.send(new m.DescribeJobsCommand({ jobs: ids.slice(i, i + 100) }));
      for (const job of out.jobs ?? []) {
        const r = byId.get(job.jobId ?? "");
        if (!r) continue;
        r.running = job.status === "RUNNING";
        if (job.status !== "SUCCEEDED" && job.status !== "FAILED") continue;
        await this.settle(
          r,
          `AWS Batch job ${job.jobId} ended ${job.status}${job.statusReason ? ` (${job.statusReason})` : ""} before the task recorded how it ended; the job's log in CloudWatch says why`,
        );
      }
    }
    this.tailRunning();
  }

  /** Shows what the running jobs' tasks logged since the last read, every few seconds. */
  private tailRunning(): void {
    if (Date.now() - this.tailedAt < TAIL_MS) return;
    this.tailedAt = Date.now();
    // LogTail reads one at a time and settle's last read waits for this one: no line twice.
    for (const r of this.running) if (r.running && !r.settled) void r.tail.read();
  }

  /**
   * The attempt is over: the rest of its logs, and what the task recorded about it; when it
   * recorded no end (the job was killed, ran out of memory, its image could not be pulled, or it
   * was cancelled), `verdict`, and the scheduler is told to record the end (or the whole attempt,
   * when the task never started).
   */
  private async settle(r: Running, verdict: string): Promise<void> {
    if (r.settled) return;
    const { spec } = r.request;
    let entry: AttemptEntry | undefined;
    try {
      entry = await readAttempt(this.context.backends.metadata, spec);
    } catch (err) {
      return this.finish(
        r,
        unreadableRecord(spec, `AWS Batch job ${r.jobId ?? "(not submitted)"}`, err),
      );
    }
    if (r.jobId) await r.tail.read();
    this.finish(r, await outcomeFromRecord(spec, entry, () => batchError(verdict)));
  }

  private finish(r: Running, outcome: AttemptOutcome): void {
    if (r.settled) return;
    r.settled = true;
    this.running.delete(r);
    r.listener.done(outcome);
    this.context.wake();
  }

  /** Stops the attempt's job (if it was submitted), then settles the attempt from its record. */
  private async terminate(r: Running): Promise<void> {
    if (r.settled || r.stopping) return;
    r.stopping = true;
    const id = r.jobId;
    if (id) await this.terminateJob(id);
    await this.settle(r, `AWS Batch job ${id ?? "(not submitted)"} was stopped`);
  }

  private async terminateJob(jobId: string | undefined): Promise<void> {
    if (!jobId) return;
    const { m, client } = await batchClient();
    await client
      .send(new m.TerminateJobCommand({ jobId, reason: "stopped by metaflow run" }))
      .catch(() => undefined);
  }
}

function batchError(message: string): PlainError {
  return { name: "BatchJobError", code: "batch", message };
}

/** A `@batch` step of `metaflow run` cannot go to AWS Batch as configured; nothing was recorded. */
export class BatchSettingsError extends MetaflowError {
  constructor(
    /** The `@batch` steps the problem stops. */
    readonly steps: readonly string[],
    /** What is missing, and how to set it. */
    readonly problem: BatchSettingProblem,
  ) {
    const names = steps.map((s) => `'${s}'`).join(", ");
    const has = `step${steps.length > 1 ? "s" : ""} ${names} ${steps.length > 1 ? "have" : "has"} @batch`;
    const lead =
      problem.key === "METAFLOW_DEFAULT_DATASTORE" || problem.key === "METAFLOW_DEFAULT_METADATA"
        ? `${has}, and a Batch job reaches only the S3 datastore and the metadata service.`
        : `${has}.`;
    super(
      "batch-settings",
      problem.headline,
      `${lead} ${problem.message} Or remove @batch to run the step here. Nothing was recorded.`,
    );
  }
}

/** What the settings check is told about a run of this process and one step's options. */
function settingsRequest(backends: Backends, options: BatchOptions): BatchSettingsRequest {
  return {
    subject: "@batch steps",
    tasks: "Batch tasks",
    action: "Running a step on AWS Batch",
    step: options,
    ...(backends.storageSpec.type === "local" ? { localDatastore: backends.storageSpec.root } : {}),
  };
}

/**
 * The preflight check of the `batch` launcher kind: each `@batch` step has what its jobs need (the
 * S3 datastore, the metadata service, a queue and an image), before the run is recorded. Steps
 * stopped by the same problem are named together.
 */
export function batchPreflight(context: PreflightContext): Promise<void> {
  const stopped = new Map<string, { problem: BatchSettingProblem; steps: string[] }>();
  for (const { step, plan } of context.steps) {
    const options = plan.launcher.options as BatchOptions;
    const checked = batchJobSettings(
      context.backends.config,
      settingsRequest(context.backends, options),
    );
    if (checked.ok) continue;
    const key = `${checked.problem.key}\n${checked.problem.message}`;
    const seen = stopped.get(key);
    if (seen) seen.steps.push(step);
    else stopped.set(key, { problem: checked.problem, steps: [step] });
  }
  const [first] = stopped.values();
  return first
    ? Promise.reject(new BatchSettingsError(first.steps, first.problem))
    : Promise.resolve();
}
