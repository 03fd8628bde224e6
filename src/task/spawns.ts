/**
 * Notices when a task starts a process: `child_process` is shared by the tasks of a host (a step
 * reaches it with `require` or `import`), so its spawning functions are wrapped once per host.
 * Only after a task that spawned something does the host look for processes left behind, so a
 * task that spawns nothing pays nothing.
 */
import childProcess from "node:child_process";
import { syncBuiltinESMExports } from "node:module";

/** Whether a process was started since the last `take()`. */
export interface SpawnWatch {
  take(): boolean;
}

let watch: { spawned: boolean } | undefined;

/** Wraps the spawning functions of `child_process` (once per process) and returns the watch. */
export function watchSpawns(): SpawnWatch {
  if (!watch) {
    const state = { spawned: false };
    watch = state;
    const proto = childProcess.ChildProcess.prototype as unknown as { spawn: (...args: unknown[]) => unknown };
    const spawn = proto.spawn;
    // Every asynchronous spawn (spawn, exec, execFile, fork) goes through ChildProcess#spawn.
    proto.spawn = function (this: unknown, ...args: unknown[]) {
      state.spawned = true;
      return spawn.apply(this, args);
    };
    // The synchronous ones wait for their child, but it may have started others in the background.
    const exports = childProcess as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const name of ["spawnSync", "execSync", "execFileSync"]) {
      const original = exports[name]!;
      exports[name] = function (this: unknown, ...args: unknown[]) {
        state.spawned = true;
        return original.apply(this, args);
      };
    }
    syncBuiltinESMExports();
  }
  const state = watch;
  return {
    take() {
      const spawned = state.spawned;
      state.spawned = false;
      return spawned;
    },
  };
}
