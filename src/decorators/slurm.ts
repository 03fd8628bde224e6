/**
 * `@slurm({ partition, account, qos, time, constraint, extraArgs })`: each task of the step runs as
 * a Slurm job (`metaflow task` on a compute node); a foreach over the step is one job array. The
 * step's `@resources` become the job's request; absent options fall back to `METAFLOW_SLURM_*`.
 */
import {
  parseSlurmOptions,
  type ParsedSlurmOptions,
  type SlurmOptions,
} from "../config/slurm-options.js";
import { stepDecorator } from "./make.js";

export type { SlurmOptions } from "../config/slurm-options.js";

/** The launcher kind `@slurm` picks (see `launchers/builtins.ts`). */
export const SLURM_LAUNCHER = "slurm";

/**
 * Runs the step's tasks as Slurm jobs.
 * @example
 * @slurm({ partition: "gpu", time: "02:00:00" }) @resources({ cpu: 4, memory: 16000, gpu: 1 })
 * @step train() { ... }
 */
export const slurm = stepDecorator<SlurmOptions, ParsedSlurmOptions>({
  name: "slurm",
  help: 'slurm:partition=P,account=A,qos=Q,time=HH:MM:SS,constraint=C,extraArgs="--flag ..." runs each task as a Slurm job',
  parse: (raw, source) => parseSlurmOptions(raw, source),
  plan(options, plan) {
    // The launcher validates its options again (a user's decorator may set them too), so they
    // travel as the user wrote them: the time as its text.
    const { time, ...rest } = options;
    plan.launcher = {
      kind: SLURM_LAUNCHER,
      options: { ...rest, ...(time ? { time: time.text } : {}) },
    };
  },
});
