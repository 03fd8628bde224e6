/**
 * Submits one job, or one job array, with a single `sbatch` call; a refusal becomes an error that
 * names the option Slurm objected to.
 */
import { commandFailure, type SlurmCli } from "./cli.js";
import { SlurmSubmitError } from "./errors.js";
import { jobScript, sbatchArgs, type ArraySpec, type JobSpec } from "./script.js";

/** A submitted job. */
export interface SubmittedJob {
  /** Slurm's job id, e.g. `1234`. */
  readonly jobId: string;
}

/** A submitted job array. */
export interface SubmittedArray extends SubmittedJob {
  /** The element ids, `1234_0` ... `1234_<size-1>`, by index. */
  readonly elements: readonly string[];
}

/** Submits one job and returns its id. */
export async function submitJob(cli: SlurmCli, spec: JobSpec): Promise<SubmittedJob> {
  return { jobId: await sbatch(cli, spec) };
}

/** Submits `spec.size` tasks as one job array (one `sbatch`), at most `spec.maxConcurrent` running at once. */
export async function submitArray(cli: SlurmCli, spec: ArraySpec): Promise<SubmittedArray> {
  const { maxArraySize } = await cli.check();
  if (spec.size > maxArraySize) {
    throw new SlurmSubmitError(
      "array too large",
      `A job array of ${spec.size} elements is larger than this cluster allows (MaxArraySize=${maxArraySize}, so at most ${maxArraySize} elements). Lower --max-num-splits or split the foreach, or ask the cluster admin to raise MaxArraySize.`,
    );
  }
  const jobId = await sbatch(cli, spec);
  return { jobId, elements: Array.from({ length: spec.size }, (_, i) => `${jobId}_${i}`) };
}

async function sbatch(cli: SlurmCli, spec: JobSpec | ArraySpec): Promise<string> {
  await cli.check();
  const args = sbatchArgs(spec);
  const r = await cli.run("sbatch", args, jobScript(spec));
  if (r.code === 0) {
    // `--parsable` prints `jobid` or `jobid;cluster`.
    const id = r.stdout.trim().split(";")[0] ?? "";
    if (/^\d+$/.test(id)) return id;
    throw new SlurmSubmitError(
      r.stdout.trim(),
      `sbatch answered ${JSON.stringify(r.stdout.trim())} where a job id was expected.`,
    );
  }
  const said = r.stderr
    .split("\n")
    .map((l) =>
      l
        .replace(/^sbatch: (error|fatal): /, "")
        .replace(/^Batch job submission failed: /, "")
        .trim(),
    )
    .filter((l) => l !== "")
    .join("; ");
  if (
    said === "" ||
    /configuration (file|source)|contact slurm controller|Socket timed out|Connection refused|Munge/i.test(
      said,
    )
  )
    throw commandFailure("sbatch", r);
  throw new SlurmSubmitError(
    said,
    `Slurm refused the job of step '${spec.labels.step}': ${said}. ${await advice(cli, said, spec)}`,
  );
}

/** What to change, for the refusals users meet most. */
async function advice(cli: SlurmCli, said: string, spec: JobSpec): Promise<string> {
  const o = spec.options ?? {};
  const r = spec.resources ?? {};
  if (/partition/i.test(said) && !/account/i.test(said)) {
    const known = await partitions(cli);
    return `The partition ${o.partition ? `'${o.partition}'` : "(the cluster's default)"} does not exist or cannot take this job${known ? `; this cluster's partitions are: ${known}` : ""}. Set @slurm({ partition }) or METAFLOW_SLURM_PARTITION.`;
  }
  if (/account/i.test(said))
    return `Check the account ${o.account ? `'${o.account}'` : "(your default)"}: set @slurm({ account }) or METAFLOW_SLURM_ACCOUNT to one of yours (\`sacctmgr show assoc user=$USER\`).`;
  if (/qos/i.test(said))
    return `Check the QOS ${o.qos ? `'${o.qos}'` : "(your default)"}: set @slurm({ qos }) or METAFLOW_SLURM_QOS.`;
  if (/gres|generic resource/i.test(said))
    return `The step asks for ${r.gpu ?? 0} GPU(s) (--gres=gpu:${r.gpu ?? 0}), which this cluster or partition does not offer: choose a GPU partition with @slurm({ partition }) or lower @resources({ gpu }).`;
  if (/memory/i.test(said))
    return `The step asks for ${r.memoryMb ?? "the default"} MiB of memory, more than a node of the partition has: lower @resources({ memory }) or choose a bigger partition.`;
  if (/node configuration is not available/i.test(said))
    return `No node of the partition can meet the request (${describeRequest(spec)}): lower @resources, or choose another partition (\`sinfo -o '%P %c %m %G'\`).`;
  if (/time/i.test(said))
    return `Check the time limit ${o.time ? `'${o.time.text}'` : ""}: set @slurm({ time }) within the partition's MaxTime (\`scontrol show partition\`).`;
  if (/feature/i.test(said))
    return `No node has the features in the constraint ${o.constraint ? `'${o.constraint}'` : ""}: fix @slurm({ constraint }) (\`sinfo -o '%N %f'\`).`;
  if (/array/i.test(said))
    return "The array is larger than the cluster allows: lower --max-num-splits or ask the admin about MaxArraySize.";
  if (/option|unrecognized|invalid/i.test(said) && (o.extraArgs ?? []).length > 0)
    return `Check the extra sbatch flags ${JSON.stringify(o.extraArgs)} (from @slurm({ extraArgs }) and METAFLOW_SLURM_EXTRA_ARGS).`;
  return "Check the step's @slurm and @resources options against the cluster (`sinfo`, `scontrol show partition`).";
}

function describeRequest(spec: JobSpec): string {
  const r = spec.resources ?? {};
  const parts = [`${r.cpu ?? 1} CPU(s)`];
  if (r.memoryMb !== undefined) parts.push(`${r.memoryMb} MiB`);
  if (r.gpu) parts.push(`${r.gpu} GPU(s)`);
  return parts.join(", ");
}

async function partitions(cli: SlurmCli): Promise<string | undefined> {
  try {
    const r = await cli.run("sinfo", ["--noheader", "--format=%P"]);
    if (r.code !== 0) return undefined;
    const names = [
      ...new Set(
        r.stdout
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== ""),
      ),
    ];
    return names.map((n) => (n.endsWith("*") ? `${n.slice(0, -1)} (default)` : n)).join(", ");
  } catch {
    return undefined;
  }
}
