/**
 * In-task decorator hooks: each decorator's `runStep(task, next)` wraps the step call, flow
 * decorators outermost, then the step's decorators in precedence order. An error a hook raises
 * itself is reported with the decorator's name; the step's own error passes through untouched.
 */
import type { DecoratorDefinition, DecoratorSpec, StepEnd, StepShape, StepTask, TaskStorage } from "../decorators/contract.js";
import { DecoratorError, StepRuntimeError } from "../errors.js";
import { setCurrentExtra } from "../flow/current.js";

/** One decorator with an in-task hook. */
export interface HookLayer {
  readonly spec: DecoratorSpec;
  readonly def: DecoratorDefinition<any>;
}

/** The decorators of a task that have an in-task hook, outermost first. */
export function hookLayers(
  flowDecorators: readonly DecoratorSpec[],
  stepDecorators: readonly DecoratorSpec[],
  definitions: ReadonlyMap<string, DecoratorDefinition<any>>,
): HookLayer[] {
  const layers: HookLayer[] = [];
  for (const spec of [...flowDecorators, ...stepDecorators]) {
    const def = definitions.get(spec.name);
    if (!def) {
      throw new StepRuntimeError(
        "unknown-decorator",
        `@${spec.name} is not defined in this task`,
        `@${spec.name} is not a built-in decorator and the flow module did not define it; define it with stepDecorator() in the flow file or a module it imports`,
      );
    }
    if (def.runStep) layers.push({ spec, def });
  }
  return layers;
}

/** What a `StepTask` is built from. */
export interface StepTaskInfo {
  readonly flowName: string;
  readonly runId: string;
  readonly stepName: string;
  readonly taskId: string;
  readonly retryCount: number;
  readonly flowDecorators: readonly DecoratorSpec[];
  readonly storage: TaskStorage;
  readonly graph: readonly StepShape[];
  readonly parameterNames: readonly string[];
}

type EndHook = (end: StepEnd) => Promise<void> | void;

/** The `onEnd` hooks of one task, with the decorator that registered each. */
export class EndHooks {
  private readonly hooks: Array<{ readonly decorator: string; readonly hook: EndHook }> = [];

  /** Registers `hook` for the decorator named `decorator`. */
  add(decorator: string, hook: EndHook): void {
    if (typeof hook !== "function") throw new TypeError(`task.onEnd() takes a function, got ${typeof hook}`);
    this.hooks.push({ decorator, hook });
  }

  /** True when no hook is registered. */
  get empty(): boolean {
    return this.hooks.length === 0;
  }

  /**
   * Runs every hook once, innermost first. After a completed task the first error fails it (as a
   * `DecoratorError`); after a failed one errors go to `log`, since the step's error is what counts.
   */
  async run(end: StepEnd, step: string, log: (line: string) => void): Promise<void> {
    let first: DecoratorError | undefined;
    for (const { decorator, hook } of this.hooks.splice(0).reverse()) {
      try {
        await hook(end);
      } catch (err) {
        const e = new DecoratorError(decorator, "onEnd", step, err);
        if (end.status === "failed") log(e.message);
        else first ??= e;
      }
    }
    if (first) throw first;
  }
}

/** The running task as hooks see it: artifacts on the flow instance, `current`, the task's log. */
export function makeStepTask(
  info: StepTaskInfo,
  flow: Record<string, unknown>,
  write: (stream: "stdout" | "stderr", text: string) => void,
  ends: EndHooks,
): StepTask {
  const slots = new Map<string, unknown>();
  return Object.freeze({
    ...info,
    pathspec: `${info.flowName}/${info.runId}/${info.stepName}/${info.taskId}`,
    get: (name: string) => (Object.prototype.hasOwnProperty.call(flow, name) ? flow[name] : undefined),
    set: (name: string, value: unknown) => {
      flow[name] = value;
    },
    has: (name: string) => Object.prototype.hasOwnProperty.call(flow, name),
    setCurrent: (key: string, value: unknown) => setCurrentExtra(key, value),
    log: (line: string, stream: "stdout" | "stderr" = "stderr") => write(stream, `${line}\n`),
    slot: <T>(key: string, create: () => T): T => {
      if (!slots.has(key)) slots.set(key, create());
      return slots.get(key) as T;
    },
    onEnd: (hook: EndHook) => ends.add("task", hook),
  });
}

/** Runs `body` (the step) inside every layer's `runStep`; `ends` learns which decorator registers an `onEnd` hook. */
export async function runWithHooks(layers: readonly HookLayer[], task: StepTask, body: () => Promise<void>, ends?: EndHooks): Promise<void> {
  const call = async (i: number): Promise<void> => {
    const layer = layers[i];
    if (!layer) return body();
    let inner: { error: unknown } | undefined;
    let called = false;
    const next = async (): Promise<void> => {
      if (called) throw new Error("next() was called twice; call it once to run the step");
      called = true;
      try {
        await call(i + 1);
      } catch (err) {
        inner = { error: err };
        throw err;
      }
    };
    try {
      // Each decorator's view of the task names it as the owner of the end hooks it adds.
      const view = ends ? Object.freeze({ ...task, onEnd: (hook: EndHook) => ends.add(layer.spec.name, hook) }) : task;
      await layer.def.runStep!(view, next, layer.spec.options);
    } catch (err) {
      // The step's (or an inner hook's) error passes through as it is.
      if (inner && err === inner.error) throw err;
      throw new DecoratorError(layer.spec.name, "runStep", task.stepName, err);
    }
    if (!called) {
      throw new DecoratorError(layer.spec.name, "runStep", task.stepName, new Error("it returned without calling next(), so the step never ran"));
    }
  };
  return call(0);
}
