/**
 * How a Slurm job ended, for an attempt whose task could not record its end: the job's Slurm
 * state explained, with the last lines of its output. The attempt's record is read by
 * `../remote-attempt.ts`, which every remote launcher shares.
 */
import * as fs from "node:fs";
import { MetaflowError, toPlainError, type PlainError } from "../../errors.js";
import { SlurmExitCodeError } from "./errors.js";
import type { JobOutcome } from "./poller.js";

/**
 * The error of a job whose task recorded no end: the job's own end state explained (out of memory,
 * time limit, node failure, cancelled, stuck PENDING), with the last lines of its raw output when
 * the command itself failed (no Node, no metaflow-ts on the node).
 */
export function jobFailure(
  id: string,
  outcome: JobOutcome,
  outputFile: string | undefined,
): PlainError {
  const output = lastLines(outputFile);
  const error = outcome.error;
  if (error instanceof SlurmExitCodeError && (error.exitCode === 127 || error.exitCode === 126)) {
    return {
      name: "SlurmCommandNotFoundError",
      code: "slurm-command-not-found",
      message:
        `Slurm job ${id} FAILED: its command could not be started on the compute node (exit code ${error.exitCode}: not found or not executable), so the task never ran. ` +
        `Install Node.js ≥ 20 and metaflow-ts on the compute nodes, load them with METAFLOW_SLURM_SETUP (e.g. "module load nodejs/20"), or say how to start metaflow-ts there with METAFLOW_SLURM_COMMAND.${output ? ` The job's output ends with: ${output}` : ""}`,
    };
  }
  if (error) {
    const plain = plainError(error);
    if (output && error instanceof SlurmExitCodeError)
      plain.message += ` The job's output (${outputFile}) ends with: ${output}`;
    return plain;
  }
  const state = outcome.state?.state ?? "an unknown state";
  return {
    name: "SlurmJobError",
    code: "slurm-unrecorded",
    message: `Slurm job ${id} ended (${state}) without the task recording how its attempt ended; the task may have been stopped from outside.${output ? ` The job's output (${outputFile}) ends with: ${output}` : ""}`,
  };
}

/** The last few non-empty lines of a job's output file, joined with ` | `; undefined when unreadable. */
function lastLines(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, 4096);
      const buf = Buffer.alloc(length);
      fs.readSync(fd, buf, 0, length, size - length);
      const lines = buf
        .toString("utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "");
      return lines.length > 0 ? lines.slice(-3).join(" | ") : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** An error as plain data; one of ours carries no stack (where the runtime noticed says nothing to the user). */
export function plainError(err: unknown): PlainError {
  const plain = toPlainError(err);
  if (err instanceof MetaflowError) delete plain.stack;
  return plain;
}
