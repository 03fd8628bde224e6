/**
 * The `Runner`: runs a flow from code through the same `runFlow` that `metaflow run` calls (no
 * child CLI, no output parsing) and hands back the finished run as a client `Run`.
 */
import * as api from "./api.js";
import { Run } from "./client/objects.js";
import type { ClientOptions } from "./client/context.js";
import { RunFailedError } from "./errors.js";
import type { ResumeOptions, RunOptions, RunSummary } from "./runtime/run.js";

/** Options of a `Runner`: those of `metaflow run`, as typed fields (defaults as in `RunOptions`). */
export interface RunnerOptions extends Pick<
  RunOptions,
  "tags" | "maxWorkers" | "maxNumSplits" | "with" | "isolation" | "datastoreRoot" | "env" | "branch" | "production"
> {
  /** Also print the run's console lines, as `metaflow run` does. @default false */
  readonly echo?: boolean;
}

/** One console line of a run: the `[run/step/task (pid N)] text` lines `metaflow run` prints. */
export interface RunnerLogLine {
  readonly stream: "stdout" | "stderr";
  readonly line: string;
}

/** A run started by a `Runner` failed; `run` is the failed run, to inspect its tasks and logs. */
export class RunnerFailedError<F = unknown> extends RunFailedError {
  constructor(
    readonly run: Run<F>,
    readonly summary: RunSummary,
  ) {
    const e = summary.error;
    super(
      run.pathspec,
      summary.failedStep,
      summary.interrupted
        ? `Run ${run.pathspec} was stopped before it finished`
        : `Run ${run.pathspec} failed in step '${summary.failedStep}' (task ${summary.failedTask}): ${e ? `${e.name}: ${e.message}` : "unknown error"}`,
    );
  }
}

/**
 * Runs a flow file from code.
 * @example
 * const run = await new Runner<TrainFlow>("flows/train.ts").run({ alpha: 0.1 });
 * console.log(await run.data("score"));
 * const fixed = await new Runner<TrainFlow>("flows/train.ts").resume({ originRunId: run.id, step: "train" });
 */
export class Runner<F = unknown> {
  /** Prepares to run `flowFile` (no I/O until `run` or `runAsync`). */
  constructor(
    readonly flowFile: string,
    readonly options: RunnerOptions = {},
  ) {}

  /**
   * Runs the flow with `parameters` and resolves to the finished `Run`; rejects with a
   * `RunnerFailedError` carrying the `Run` when a task fails, and with the usual MetaflowError
   * (bad parameter, bad graph) when the run cannot start.
   */
  async run(parameters: Readonly<Record<string, unknown>> = {}): Promise<Run<F>> {
    const handle = await this.runAsync(parameters);
    const run = await handle.wait();
    if (!run.successful) throw new RunnerFailedError(run, handle.summary!);
    return run;
  }

  /**
   * Resumes an earlier run (by default this user's latest) as `metaflow resume` does: a new run
   * that reuses every task that finished before the failed step (or before `step`) and reruns the
   * rest; resolves and rejects like `run()`.
   */
  async resume(options: ResumeOptions = {}): Promise<Run<F>> {
    const handle = await this.resumeAsync(options);
    const run = await handle.wait();
    if (!run.successful) throw new RunnerFailedError(run, handle.summary!);
    return run;
  }

  /** Starts the flow and resolves, once the run id is known, to a handle on the running run. */
  runAsync(parameters: Readonly<Record<string, unknown>> = {}): Promise<ExecutingRun<F>> {
    return this.start({ parameters });
  }

  /** Starts a resume (see `resume`) and resolves, once the new run's id is known, to its handle. */
  resumeAsync(options: ResumeOptions = {}): Promise<ExecutingRun<F>> {
    return this.start({ resume: options });
  }

  private async start(what: Pick<RunOptions, "parameters" | "resume">): Promise<ExecutingRun<F>> {
    // Loaded on demand: the runtime pulls in the bundler and the parser, which a process that
    // only reads results (or a task host, which loads this library) has no use for.
    const { runFlow } = await import("./runtime/run.js");
    // What the flow module sees as "metaflow-ts" while the parent reads its class; the tasks
    // themselves get the whole library in their worker hosts.
    const library = api as unknown as Record<string, unknown>;
    const { echo, ...rest } = this.options;
    const client: ClientOptions =
      rest.datastoreRoot === undefined ? {} : { datastoreRoot: rest.datastoreRoot };
    const feed = new LineFeed();
    const controller = new AbortController();
    let announce!: (runId: string) => void;
    const idKnown = new Promise<string>((resolve) => (announce = resolve));
    const options: RunOptions = {
      ...rest,
      flowFile: this.flowFile,
      ...what,
      signal: controller.signal,
      onRunId: (id) => announce(id),
      output: (stream, line) => {
        feed.push({ stream, line });
        if (echo) (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`);
      },
    };
    const done = runFlow(options, library).finally(() => feed.close());
    // Errors before the run id is known (a bad parameter, a bad graph) reject runAsync itself.
    const runId = await Promise.race([idKnown, done.then((s) => s.runId)]);
    return new ExecutingRun<F>(runId, done, feed, controller, client);
  }
}

/** A run started with `Runner.runAsync`: its id, status and console lines while it runs. */
export class ExecutingRun<F = unknown> {
  /** How the run ended, once it has. */
  summary: RunSummary | undefined;
  private readonly finished: Promise<RunSummary>;

  /** Made by `Runner.runAsync`. */
  constructor(
    /** The run id. */
    readonly runId: string,
    done: Promise<RunSummary>,
    private readonly feed: LineFeed,
    private readonly controller: AbortController,
    private readonly client: ClientOptions,
  ) {
    this.finished = done.then((s) => (this.summary = s));
    // The outcome is read by wait(); a caller that never waits must not see an unhandled rejection.
    this.finished.catch(() => undefined);
  }

  /** `running` until the run ends, then `completed` or `failed`. */
  get status(): "running" | "completed" | "failed" {
    return this.summary?.status ?? "running";
  }

  /** The run's console lines from its start, then new ones as they come, until it ends. */
  logs(): AsyncIterable<RunnerLogLine> {
    return this.feed.reader();
  }

  /** Waits for the run to end and resolves to it as a client `Run`, successful or not. */
  async wait(): Promise<Run<F>> {
    const summary = await this.finished;
    return Run.loadOwn<F>(summary.pathspec, this.client);
  }

  /** Stops every task, marks the run failed, and resolves once it has ended. */
  async kill(): Promise<void> {
    this.controller.abort();
    await this.finished;
  }
}

/** Lines kept in order for any number of readers, each of which sees every line from the first. */
class LineFeed {
  private readonly lines: RunnerLogLine[] = [];
  private closed = false;
  private wake: Array<() => void> = [];

  push(line: RunnerLogLine): void {
    this.lines.push(line);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = [];
    for (const w of waiting) w();
  }

  async *reader(): AsyncGenerator<RunnerLogLine> {
    let i = 0;
    for (;;) {
      while (i < this.lines.length) yield this.lines[i++]!;
      if (this.closed) return;
      await new Promise<void>((resolve) => this.wake.push(resolve));
    }
  }
}
