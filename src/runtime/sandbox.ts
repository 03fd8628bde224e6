/**
 * A fresh vm context per task: its own globals, its own instance of the flow module and of every
 * package the flow bundles, its own `process.env`, console and timers. Node built-ins are shared
 * (they hold no user state that leaks between tasks in practice).
 */
import { Console } from "node:console";
import { createRequire } from "node:module";
import { Writable } from "node:stream";
import * as vm from "node:vm";

/** Thrown inside a task when its code calls `process.exit()`. */
export class TaskExitSignal extends Error {
  constructor(readonly exitCode: number) {
    super(`the step called process.exit(${exitCode})`);
    this.name = "ProcessExit";
  }
}

/** A task's sandbox and the handles the executor needs to tear it down. */
export interface Sandbox {
  readonly context: vm.Context;
  /** Loads the bundled flow module into this context and returns its exports. */
  load(script: vm.Script, file: string, libraryExports: Record<string, unknown>): Record<string, unknown>;
  /** Clears every timer the task left behind and silences its streams. */
  dispose(): void;
  /** Set when the task called `process.exit`. */
  exitCode: number | undefined;
}

/** Where a sandbox's output goes. */
export interface SandboxOptions {
  readonly env: Record<string, string | undefined>;
  readonly argv: readonly string[];
  readonly write: (stream: "stdout" | "stderr", text: string) => void;
  /** Called with errors thrown by timer callbacks, which would otherwise crash the host. */
  readonly onAsyncError: (err: unknown) => void;
}

function taskStream(write: (text: string) => void): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: unknown, _enc, cb) {
      write(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
      cb();
    },
  });
}

const SHARED_GLOBALS = [
  "Buffer",
  "URL",
  "URLSearchParams",
  "TextEncoder",
  "TextDecoder",
  "AbortController",
  "AbortSignal",
  "Event",
  "EventTarget",
  "MessageChannel",
  "MessagePort",
  "BroadcastChannel",
  "Blob",
  "fetch",
  "Headers",
  "Request",
  "Response",
  "FormData",
  "structuredClone",
  "atob",
  "btoa",
  "performance",
  "crypto",
  "queueMicrotask",
] as const;

/** Creates a fresh sandbox for one task. */
export function createSandbox(options: SandboxOptions): Sandbox {
  let disposed = false;
  const write = (stream: "stdout" | "stderr") => (text: string) => {
    if (!disposed) options.write(stream, text);
  };
  const stdout = taskStream(write("stdout"));
  const stderr = taskStream(write("stderr"));
  const timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();

  const guard =
    <A extends unknown[]>(fn: (...args: A) => unknown) =>
    (...args: A) => {
      try {
        const r = fn(...args);
        if (r && typeof (r as Promise<unknown>).then === "function") {
          (r as Promise<unknown>).then(undefined, options.onAsyncError);
        }
      } catch (err) {
        options.onAsyncError(err);
      }
    };

  const sandbox: Sandbox = {
    context: undefined as unknown as vm.Context,
    exitCode: undefined,
    load(script, file, libraryExports) {
      const wrapper = script.runInContext(this.context) as (
        exports: unknown,
        require: unknown,
        module: unknown,
        filename: string,
        dirname: string,
      ) => void;
      const realRequire = createRequire(file);
      const taskRequire = (id: string): unknown => {
        if (id === "metaflow-ts") return libraryExports;
        if (id === "process" || id === "node:process") return proc;
        if (id === "console" || id === "node:console") return taskConsole;
        return realRequire(id);
      };
      taskRequire.resolve = realRequire.resolve;
      const module = { exports: {} as Record<string, unknown> };
      wrapper.call(module.exports, module.exports, taskRequire, module, file, file.replace(/\/[^/]*$/, ""));
      return module.exports;
    },
    dispose() {
      disposed = true;
      for (const t of timers) {
        clearTimeout(t as NodeJS.Timeout);
        clearImmediate(t as NodeJS.Immediate);
      }
      timers.clear();
    },
  };

  const taskConsole = new Console({ stdout, stderr });
  const env: Record<string, string | undefined> = { ...options.env };
  const proc = Object.create(process, {
    env: { value: env, enumerable: true },
    argv: { value: [...options.argv], enumerable: true },
    stdout: { value: stdout, enumerable: true },
    stderr: { value: stderr, enumerable: true },
    exit: {
      value: (code?: number) => {
        const c = typeof code === "number" ? code : 0;
        sandbox.exitCode = c;
        throw new TaskExitSignal(c);
      },
    },
    exitCode: { get: () => undefined, set: () => undefined },
    chdir: {
      value: (dir: string) => {
        throw new Error(`process.chdir(${JSON.stringify(dir)}) is not allowed in a step: tasks share the host's working directory`);
      },
    },
    // Listeners registered by a task must not outlive it on the shared host process.
    on: { value: () => proc },
    once: { value: () => proc },
    addListener: { value: () => proc },
    off: { value: () => proc },
    removeListener: { value: () => proc },
  }) as NodeJS.Process;

  const globals: Record<string, unknown> = {
    console: taskConsole,
    process: proc,
    setTimeout: (fn: (...a: unknown[]) => unknown, ms?: number, ...args: unknown[]) => {
      const t: NodeJS.Timeout = setTimeout(
        (...a: unknown[]) => {
          timers.delete(t);
          guard(fn)(...a);
        },
        ms,
        ...args,
      );
      timers.add(t);
      return t;
    },
    setInterval: (fn: (...a: unknown[]) => unknown, ms?: number, ...args: unknown[]) => {
      const t = setInterval(guard(fn), ms, ...args);
      timers.add(t);
      return t;
    },
    setImmediate: (fn: (...a: unknown[]) => unknown, ...args: unknown[]) => {
      const t: NodeJS.Immediate = setImmediate((...a: unknown[]) => {
        timers.delete(t);
        guard(fn)(...a);
      }, ...args);
      timers.add(t);
      return t;
    },
    clearTimeout: (t: NodeJS.Timeout) => {
      timers.delete(t);
      clearTimeout(t);
    },
    clearInterval: (t: NodeJS.Timeout) => {
      timers.delete(t);
      clearInterval(t);
    },
    clearImmediate: (t: NodeJS.Immediate) => {
      timers.delete(t);
      clearImmediate(t);
    },
  };
  for (const name of SHARED_GLOBALS) {
    const v = (globalThis as Record<string, unknown>)[name];
    if (v !== undefined) globals[name] = v;
  }
  const context = vm.createContext(globals, { name: "metaflow-task" });
  vm.runInContext("globalThis.global = globalThis;", context);
  // Node defines these well-known symbols on its own realm only; `using` in a flow (and objects
  // from the shared library) must agree on them.
  const ctxSymbol = vm.runInContext("Symbol", context) as Record<string, unknown>;
  for (const name of ["dispose", "asyncDispose", "metadata"] as const) {
    const sym = (Symbol as unknown as Record<string, symbol | undefined>)[name];
    if (sym && ctxSymbol[name] === undefined) Object.defineProperty(ctxSymbol, name, { value: sym });
  }
  (sandbox as { context: vm.Context }).context = context;
  return sandbox;
}

/** Compiles a CommonJS bundle once; it then runs in many contexts. */
export function compileBundle(code: string, filename: string): vm.Script {
  return new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, {
    filename,
  });
}
