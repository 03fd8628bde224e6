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
  /**
   * Rebuilds plain data loaded by the host (arrays, objects, Map, Set, Date, RegExp, typed-array
   * views) with the task's own intrinsics, so `x instanceof Map` holds inside the step. Binary data
   * is not copied: typed arrays become new views of the same memory; Buffers stay as they are.
   */
  adopt(value: unknown): unknown;
  /** An array of the task's realm holding `items`. */
  array<T>(items: readonly T[]): T[];
}

// Runs inside each task's context; written in plain JavaScript because it is evaluated there.
const ADOPT_SOURCE = `(function () {
  const toTag = (v) => Object.prototype.toString.call(v);
  const typed = new Set(["Int8Array","Uint8Array","Uint8ClampedArray","Int16Array","Uint16Array","Int32Array","Uint32Array","Float32Array","Float64Array","BigInt64Array","BigUint64Array"]);
  const errors = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };
  function adopt(value, seen) {
    if (value === null || typeof value !== "object") return value;
    if (Buffer.isBuffer(value)) return value;
    const known = seen.get(value);
    if (known !== undefined) return known;
    const tag = toTag(value).slice(8, -1);
    let out;
    if (Array.isArray(value)) {
      out = new Array(value.length);
      seen.set(value, out);
      for (let i = 0; i < value.length; i++) if (i in value) out[i] = adopt(value[i], seen);
      return out;
    }
    switch (tag) {
      case "Object": {
        out = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
        seen.set(value, out);
        for (const k of Object.keys(value)) out[k] = adopt(value[k], seen);
        return out;
      }
      case "Map":
        out = new Map();
        seen.set(value, out);
        for (const [k, v] of value) out.set(adopt(k, seen), adopt(v, seen));
        return out;
      case "Set":
        out = new Set();
        seen.set(value, out);
        for (const v of value) out.add(adopt(v, seen));
        return out;
      case "Date":
        return new Date(value.getTime());
      case "RegExp":
        return new RegExp(value.source, value.flags);
      case "Error": {
        const Ctor = errors[value.name] || Error;
        out = new Ctor(value.message);
        if (value.name && value.name !== out.name) out.name = value.name;
        if (value.stack) out.stack = value.stack;
        return out;
      }
      default:
        if (typed.has(tag)) return new globalThis[tag](value.buffer, value.byteOffset, value.length);
        return value;
    }
  }
  return (value) => adopt(value, new Map());
})()`;

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
    adopt(value) {
      return adoptInContext(value);
    },
    array(items) {
      return arrayFrom(items);
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
  const adoptInContext = adoptScript.runInContext(context) as (v: unknown) => unknown;
  const arrayFrom = vm.runInContext("(items) => Array.from(items)", context) as <T>(items: readonly T[]) => T[];
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

const adoptScript = new vm.Script(ADOPT_SOURCE, { filename: "metaflow-ts:adopt" });

/** Compiles a CommonJS bundle once; it then runs in many contexts. */
export function compileBundle(code: string, filename: string): vm.Script {
  return new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, {
    filename,
  });
}
