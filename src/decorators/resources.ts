/**
 * `@resources({ cpu, memory, gpu })`: what a task needs. Locally, a memory request runs the task
 * in its own process with that V8 heap limit; compute backends read all three.
 */
import { checkKeys, numberOption, requestResources } from "./contract.js";
import { stepDecorator } from "./make.js";

/** Options of `@resources`. */
export interface ResourcesOptions {
  /** CPU cores. @default 1 */
  cpu?: number;
  /** Memory in MiB. @default 4096 */
  memory?: number;
  /** GPUs. @default 0 */
  gpu?: number;
}

/** Declares the resources each task of the step needs. */
export const resources = stepDecorator<ResourcesOptions, Required<ResourcesOptions> & { memorySet: boolean }>({
  name: "resources",
  help: "resources:cpu=N,memory=MiB,gpu=N declares what each task needs",
  parse(raw) {
    checkKeys("resources", raw, ["cpu", "memory", "gpu"]);
    const cpu = numberOption("resources", "cpu", raw.cpu) ?? 1;
    const memory = numberOption("resources", "memory", raw.memory);
    const gpu = numberOption("resources", "gpu", raw.gpu) ?? 0;
    if (cpu <= 0) throw new Error(`@resources.cpu must be positive, got ${cpu}`);
    if (memory !== undefined && (memory < 64 || !Number.isInteger(memory))) {
      throw new Error(`@resources.memory must be an integer number of MiB ≥ 64, got ${memory}`);
    }
    if (gpu < 0 || !Number.isInteger(gpu)) throw new Error(`@resources.gpu must be a whole number ≥ 0, got ${gpu}`);
    return { cpu, memory: memory ?? 4096, gpu, memorySet: memory !== undefined };
  },
  plan(options, plan) {
    requestResources(plan, { cpu: options.cpu, memoryMb: options.memorySet ? options.memory : undefined, gpu: options.gpu });
    // Locally, a memory limit needs a process of its own (a V8 heap limit); remote launchers
    // read the request as it is.
    if (options.memorySet && plan.launcher.kind === "host") plan.launcher = { kind: "process", options: {} };
  },
});
