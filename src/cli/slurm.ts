/**
 * `metaflow slurm list [--run-id ID] [--flow NAME]` and `metaflow slurm kill --run-id ID | --flow
 * NAME | --all`: the user's Slurm jobs of Metaflow.ts runs, found by job name.
 */
import { Command } from "commander";
import { UsageError } from "../errors.js";
import { killJobs, listJobs, SlurmCli, type MetaflowJob } from "../launchers/slurm/index.js";
import { exitOnClosedPipe } from "./client-options.js";

interface SlurmFlags {
  runId?: string;
  flow?: string;
  all?: boolean;
}

function filters(flags: SlurmFlags): { runId?: string; flow?: string } {
  if (flags.runId !== undefined && !/^[A-Za-z0-9_-]+$/.test(flags.runId)) {
    throw new UsageError(
      `--run-id must be a run id (letters, digits, '_' or '-'), got ${JSON.stringify(flags.runId)}`,
    );
  }
  if (flags.flow !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(flags.flow)) {
    throw new UsageError(`--flow must be a flow's class name, got ${JSON.stringify(flags.flow)}`);
  }
  return {
    ...(flags.runId !== undefined ? { runId: flags.runId } : {}),
    ...(flags.flow !== undefined ? { flow: flags.flow } : {}),
  };
}

function scope(flags: SlurmFlags): string {
  if (flags.runId) return ` of run ${flags.flow ? `${flags.flow}/` : ""}${flags.runId}`;
  return flags.flow ? ` of flow ${flags.flow}` : "";
}

/** One table row per job, array element, or pending rest of an array. */
function table(jobs: readonly MetaflowJob[]): string {
  const rows = jobs.map((j) => [
    j.id,
    j.state,
    `${j.labels.flow}/${j.labels.runId}/${j.labels.step}`,
    j.labels.taskId === undefined
      ? ""
      : `${j.labels.taskId}${j.labels.attempt ? ` (attempt ${j.labels.attempt})` : ""}`,
    j.partition,
    j.elapsed,
    j.phase === "pending" ? `(${j.reason ?? "waiting"})` : (j.nodes ?? ""),
  ]);
  const header = ["JOB", "STATE", "FLOW/RUN/STEP", "TASK", "PARTITION", "TIME", "NODES (REASON)"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** Builds the `slurm` command and its subcommands. */
export function slurmCommand(): Command {
  const list = new Command("list")
    .description("list your queued and running Slurm jobs of Metaflow.ts runs")
    .option("--run-id <id>", "only this run's jobs")
    .option("--flow <name>", "only this flow's jobs")
    .option("--all", "also jobs that ended recently (while Slurm still holds them)")
    .action(async (flags: SlurmFlags) => {
      exitOnClosedPipe();
      const jobs = await listJobs(new SlurmCli(), {
        ...filters(flags),
        includeFinished: flags.all === true,
      });
      if (jobs.length === 0) {
        process.stdout.write(
          `No ${flags.all ? "" : "queued or running "}Slurm jobs${scope(flags)}.\n`,
        );
        return;
      }
      process.stdout.write(`${table(jobs)}\n`);
    });
  const kill = new Command("kill")
    .description(
      "cancel your queued and running Slurm jobs of a run, of a flow, or (--all) of every run",
    )
    .option("--run-id <id>", "this run's jobs")
    .option("--flow <name>", "this flow's jobs")
    .option("--all", "every Metaflow.ts job of yours, of every run")
    .action(async (flags: SlurmFlags) => {
      // Cancelling every run's jobs is never the default: it has to be asked for by name.
      const filtered = flags.runId !== undefined || flags.flow !== undefined;
      if (flags.all && filtered)
        throw new UsageError(
          "slurm kill: --all cancels the jobs of every run; give it without --run-id and --flow",
        );
      if (!flags.all && !filtered)
        throw new UsageError(
          "slurm kill: say whose jobs to cancel: --run-id ID (with --flow NAME when two flows share the id), --flow NAME, or --all for every Metaflow.ts job of yours",
        );
      const cli = new SlurmCli();
      const only = filters(flags);
      if (only.runId !== undefined && only.flow === undefined) {
        // Run ids are unique per flow: the same id in two flows must not cancel the other's jobs.
        const flows = [...new Set((await listJobs(cli, only)).map((j) => j.labels.flow))];
        if (flows.length > 1) {
          throw new UsageError(
            `run id ${only.runId} has jobs in more than one flow (${flows.join(", ")}); add --flow NAME to say whose to cancel`,
          );
        }
      }
      const jobs = await killJobs(cli, only);
      if (jobs.length === 0) {
        process.stdout.write(`No queued or running Slurm jobs${scope(flags)} to cancel.\n`);
        return;
      }
      const ids = [...new Set(jobs.map((j) => j.jobId))];
      const runs = [...new Set(jobs.map((j) => `${j.labels.flow}/${j.labels.runId}`))];
      process.stdout.write(
        `Cancelled Slurm job${ids.length === 1 ? "" : "s"} ${ids.join(", ")} (${jobs.length} queued or running, of ${runs.join(", ")}).\n`,
      );
    });
  const slurm = new Command("slurm").description(
    "list or cancel the Slurm jobs of Metaflow.ts runs",
  );
  for (const sub of [list, kill])
    slurm.addCommand(sub.exitOverride().configureOutput({ writeErr: () => undefined }));
  return slurm;
}
