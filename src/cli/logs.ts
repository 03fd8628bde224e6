/** `metaflow logs PATHSPEC`: a task's or a step's logs, followed while the tasks run. */
import { Command } from "commander";
import { once } from "node:events";
import { ObjectNotFoundError } from "../client/errors.js";
import { Run, Task } from "../client/objects.js";
import { isAlive, type LogLine } from "../client/logs.js";
import { parsePathspec } from "../client/pathspec.js";
import { UsageError } from "../errors.js";
import { addNamespaceOptions, applyNamespace, exitOnClosedPipe, wholeNumber, type NamespaceFlags } from "./client-options.js";

interface LogsFlags extends NamespaceFlags {
  stdout?: boolean;
  stderr?: boolean;
  timestamps?: boolean;
  attempt?: string;
  follow: boolean;
}

const STEP_POLL_MS = 300;
/** Following a step stops when no task of the run has run for this long and the run recorded no end. */
const IDLE_LIMIT_MS = 5000;

/** Builds the `logs` command. */
export function logsCommand(): Command {
  const cmd = new Command("logs")
    .argument("<pathspec>", "Flow/run/step (every task of the step) or Flow/run/step/task")
    .description("print a task's or a step's logs; follows tasks that are still running")
    .option("--stdout", "only standard output")
    .option("--stderr", "only standard error")
    .option("--timestamps", "prefix each line with the time it was written")
    .option("--attempt <n>", "the attempt to show (default: the latest)")
    .option("--no-follow", "print what is there now and stop, even if the task still runs");
  return addNamespaceOptions(cmd).action(async (pathspec: string, flags: LogsFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    if (flags.stdout && flags.stderr) throw new UsageError("--stdout and --stderr exclude each other; give neither for both");
    const streams = flags.stdout ? (["stdout"] as const) : flags.stderr ? (["stderr"] as const) : (["stdout", "stderr"] as const);
    const attempt = flags.attempt === undefined ? undefined : wholeNumber("--attempt", flags.attempt);
    const [flow, runId, stepName, taskId] = parsePathspec(pathspec, "step", "task") as [string, string, string, string | undefined];
    const show = async (task: Task, header: boolean) => {
      if (header) process.stdout.write(`==> ${task.pathspec} <==\n`);
      const options = { streams, ...(attempt !== undefined ? { attempt } : {}) };
      // A task that can write no more (it succeeded, or its run ended) is read once, in chunks.
      const live = flags.follow && !(task.successful || task.run.finished);
      const lines: AsyncIterable<LogLine> = live ? task.followLogs(options) : task.loglines(options);
      // Lines go out in batches, read no faster than the reader of the output takes them.
      let pending = "";
      let pendingStream: "stdout" | "stderr" = "stdout";
      const flush = async () => {
        const out = pendingStream === "stdout" ? process.stdout : process.stderr;
        const ok = out.write(pending);
        pending = "";
        if (!ok) await once(out, "drain");
      };
      for await (const l of lines) {
        if (l.stream !== pendingStream || pending.length > 64 * 1024) {
          if (pending) await flush();
          pendingStream = l.stream;
        }
        pending += flags.timestamps ? `${l.time}  ${l.line}\n` : `${l.line}\n`;
        // While following, a line is shown as soon as it is read.
        if (live) await flush();
      }
      if (pending) await flush();
    };
    if (taskId !== undefined) return show(await Task.get(pathspec), false);

    // A step of a running run may still gain tasks (a foreach fans out as its parent finishes),
    // so the step is listed again until the run has ended.
    let run = await Run.get(`${flow}/${runId}`);
    const seen = new Set<string>();
    let idleSince: number | undefined;
    for (;;) {
      const wasFinished = run.finished;
      const step = await run.step(stepName).catch((err: unknown) => {
        // Following a running run: the step may simply not have started yet.
        if (err instanceof ObjectNotFoundError && !wasFinished && flags.follow) return undefined;
        throw err;
      });
      for await (const t of step?.tasks() ?? []) {
        if (seen.has(t.id)) continue;
        seen.add(t.id);
        await show(t, true);
      }
      if (wasFinished || !flags.follow) return;
      // Without an end record a run looks alive forever if its scheduler was killed; a run with
      // no task running for a while is taken as stopped.
      if (await hasRunningTask(run)) idleSince = undefined;
      else idleSince ??= Date.now();
      if (idleSince !== undefined && Date.now() - idleSince > IDLE_LIMIT_MS) {
        process.stderr.write(`Run ${run.pathspec} has no running task and recorded no end; it may have stopped abnormally. Stopped following.\n`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, STEP_POLL_MS));
      run = await run.refresh();
    }
  });
}

async function hasRunningTask(run: Run): Promise<boolean> {
  for await (const step of run.steps()) {
    for await (const task of step.tasks()) if (!task.finished && isAlive(task.attempts[task.attempts.length - 1]!.pid)) return true;
  }
  return false;
}
