/**
 * The built-in task launchers, listed in one place by kind. A step's plan names a kind
 * (`plan.launcher.kind`); the scheduler makes one launcher of each kind a run uses.
 */
import { BatchLauncher, batchPreflight } from "./batch.js";
import { HostPoolLauncher, ProcessLauncher } from "./local.js";
import { slurmLauncher, slurmPreflight } from "./slurm/launcher.js";
import type { LauncherFactory, LauncherPreflight, PreflightContext } from "./types.js";
import { discardWarmHost, prewarmHost, takeWarmHost } from "./worker-host.js";

const FACTORIES: ReadonlyMap<string, LauncherFactory> = new Map<string, LauncherFactory>([
  ["host", (context) => new HostPoolLauncher(context, takeWarmHost())],
  ["process", (context) => new ProcessLauncher(context)],
  ["batch", (context) => new BatchLauncher(context)],
  ["slurm", slurmLauncher],
]);

/** Checks some kinds make before a run starts (tools, settings, a datastore their tasks reach). */
const PREFLIGHTS: ReadonlyMap<string, LauncherPreflight> = new Map([
  ["batch", batchPreflight],
  ["slurm", slurmPreflight],
]);

/** The factory of a launcher kind, or undefined. */
export function launcherFactory(kind: string): LauncherFactory | undefined {
  return FACTORIES.get(kind);
}

/**
 * Runs the preflight check of every launcher kind the steps' plans name, before the run is
 * recorded; rejects with the first kind's error.
 */
export async function preflightLaunchers(steps: PreflightContext["steps"], context: Omit<PreflightContext, "steps">): Promise<void> {
  const byKind = new Map<string, Array<PreflightContext["steps"][number]>>();
  for (const s of steps) byKind.set(s.plan.launcher.kind, [...(byKind.get(s.plan.launcher.kind) ?? []), s]);
  for (const [kind, kindSteps] of byKind) await PREFLIGHTS.get(kind)?.({ ...context, steps: kindSteps });
}

/** Every launcher kind, sorted (for messages). */
export function launcherKinds(): string[] {
  return [...FACTORIES.keys()].sort();
}

/** Starts what local launchers need ahead of the first task (a worker process), while the flow loads. */
export function prewarmLaunchers(): void {
  prewarmHost();
}

/** Releases what `prewarmLaunchers` started when no run will use it (the command failed early). */
export function discardPrewarmed(): void {
  discardWarmHost();
}
