/**
 * The built-in task launchers, listed in one place by kind. A step's plan names a kind
 * (`plan.launcher.kind`); the scheduler makes one launcher of each kind a run uses.
 */
import { BatchLauncher } from "./batch.js";
import { HostPoolLauncher, ProcessLauncher } from "./local.js";
import type { LauncherFactory } from "./types.js";
import { discardWarmHost, prewarmHost, takeWarmHost } from "./worker-host.js";

const FACTORIES: ReadonlyMap<string, LauncherFactory> = new Map<string, LauncherFactory>([
  ["host", (context) => new HostPoolLauncher(context, takeWarmHost())],
  ["process", (context) => new ProcessLauncher(context)],
  ["batch", (context) => new BatchLauncher(context)],
]);

/** The factory of a launcher kind, or undefined. */
export function launcherFactory(kind: string): LauncherFactory | undefined {
  return FACTORIES.get(kind);
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
