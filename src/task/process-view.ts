/**
 * What a task sees of the host's `process`: a frozen view, shared by the tasks of a host, that
 * reads the real process property by property without having it as its prototype — so the IPC
 * channel, native bindings and internals are out of reach of a step's `process`.
 */

/**
 * What of the host's `process` a task never sees: the IPC channel to the scheduler (a step must not
 * be able to speak the runtime's protocol), native bindings, and internals (names starting `_`).
 */
const HIDDEN_PROCESS_KEYS = new Set([
  "send",
  "channel",
  "connected",
  "disconnect",
  "binding",
  "dlopen",
  "reallyExit",
  "mainModule",
  "setUncaughtExceptionCaptureCallback",
  "hasUncaughtExceptionCaptureCallback",
  "openStdin",
  "constructor",
]);

let sharedProcessView: object | undefined;

/**
 * A frozen object that reads the host's `process` property by property (`version`, `pid`,
 * `cwd()`, `hrtime`, `memoryUsage()`, `nextTick`, ...) without having it as its prototype; the
 * tasks of a host share it, so it holds no state of its own. Assigning a property shadows it for
 * the task only. Events are not delivered: `emit` does nothing and no listener is ever called.
 */
export function processView(): object {
  if (sharedProcessView) return sharedProcessView;
  const view = Object.create(null) as Record<string | symbol, unknown>;
  const names = new Set<string>();
  for (let o: object | null = process; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) names.add(name);
  }
  const quiet: Record<string, unknown> = { emit: () => false, listeners: () => [], rawListeners: () => [], listenerCount: () => 0, eventNames: () => [] };
  for (const name of names) {
    if (name.startsWith("_") || HIDDEN_PROCESS_KEYS.has(name) || name in quiet) continue;
    Object.defineProperty(view, name, {
      enumerable: true,
      get: () => (process as unknown as Record<string, unknown>)[name],
      set(this: object, value: unknown) {
        Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
      },
    });
  }
  for (const [name, value] of Object.entries(quiet)) Object.defineProperty(view, name, { value });
  Object.defineProperty(view, Symbol.toStringTag, { value: "process" });
  sharedProcessView = Object.freeze(view);
  return sharedProcessView;
}
