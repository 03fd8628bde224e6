/**
 * What a run with `@slurm` steps checks before it starts (before anything is recorded or
 * submitted): each step's options, that Slurm answers, that the partitions exist, and that the
 * compute nodes can reach the run's datastore and metadata.
 */
import { parseSlurmOptions, SlurmOptionError, withSlurmDefaults } from "../../config/index.js";
import type { PreflightContext } from "../types.js";
import { SlurmCli } from "./cli.js";
import { SlurmDatastoreError } from "./errors.js";
import { reachFacts, reachProblems } from "./reach.js";

/** The preflight check of the `slurm` launcher kind. */
export async function slurmPreflight(
  context: PreflightContext,
  cli: SlurmCli = new SlurmCli(),
): Promise<void> {
  const settings = context.backends.config.slurm;
  const wanted = new Map<string, string[]>();
  for (const { step, plan } of context.steps) {
    let partition: string | undefined;
    try {
      partition = withSlurmDefaults(
        parseSlurmOptions(plan.launcher.options, "code"),
        settings,
      ).partition;
    } catch (err) {
      if (err instanceof SlurmOptionError)
        throw new SlurmOptionError(err.field, `step '${step}': ${err.message}`);
      throw err;
    }
    for (const p of partition?.split(",") ?? []) wanted.set(p, [...(wanted.get(p) ?? []), step]);
  }
  await cli.check();
  await checkPartitions(
    cli,
    wanted,
    settings.partition.value !== undefined ? settings.partition.origin : undefined,
  );
  const problems = reachProblems(
    await reachFacts(context.backends, cli),
    settings.datastoreCheck.value,
  );
  if (problems.length > 0) throw new SlurmDatastoreError(problems);
}

/** Refuses partitions the cluster does not have, naming the steps and the partitions it has. */
async function checkPartitions(
  cli: SlurmCli,
  wanted: ReadonlyMap<string, readonly string[]>,
  settingOrigin: string | undefined,
): Promise<void> {
  if (wanted.size === 0) return;
  const r = await cli.run("sinfo", ["--noheader", "--format=%P"]);
  if (r.code !== 0) return; // sbatch will say it at submission
  const known = [
    ...new Set(
      r.stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== ""),
    ),
  ];
  const names = new Set(known.map((n) => n.replace(/\*$/, "")));
  for (const [partition, steps] of wanted) {
    if (names.has(partition)) continue;
    const list = known.map((n) => (n.endsWith("*") ? `${n.slice(0, -1)} (default)` : n)).join(", ");
    const from = settingOrigin
      ? ` (from METAFLOW_SLURM_PARTITION, ${settingOrigin}, unless the step sets its own)`
      : "";
    throw new SlurmOptionError(
      "partition",
      `step${steps.length > 1 ? "s" : ""} ${steps.map((s) => `'${s}'`).join(", ")}: the partition '${partition}'${from} does not exist on this cluster; its partitions are: ${list}. Choose one with @slurm({ partition }) or METAFLOW_SLURM_PARTITION. Nothing was submitted.`,
    );
  }
}
