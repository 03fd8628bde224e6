/**
 * Each step's plan: the decorators that apply to it — written on the step, written on the flow
 * class (a default for every step), or given with `--with` (a default below both) — and the plan
 * their parent-side hooks shape, starting from the run's isolation setting.
 */
import { defaultPlan, parseOptions, parseWithFlag, type DecoratorSpec, type PlanContext, type TaskPlan } from "../decorators/contract.js";
import { DecoratorError, UsageError } from "../errors.js";
import type { RunPlan } from "../task/run-plan.js";
import type { LoadedFlow } from "./load-flow.js";
import { staticTransition } from "./routing.js";

/** What one step runs with. */
export interface StepSetup {
  readonly plan: TaskPlan;
  /** The step decorators that apply to it, lowest precedence first (their in-task hooks run in this order, outermost first). */
  readonly decorators: readonly DecoratorSpec[];
}

/** Parses `--with` values against the flow's decorator definitions. */
export function parseWithFlags(flow: LoadedFlow, flags: readonly string[]): DecoratorSpec[] {
  return flags.map((text) => {
    let parsed: { name: string; raw: Record<string, string> };
    try {
      parsed = parseWithFlag(text);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const def = flow.definitions.get(parsed.name);
    const known = () => [...flow.definitions.values()].filter((d) => d.kind !== "flow").map((d) => d.name).sort().join(", ");
    if (!def) throw new UsageError(`--with ${text}: there is no decorator '${parsed.name}'; known step decorators: ${known()}`);
    if (def.kind === "flow") {
      throw new UsageError(`--with ${text}: @${parsed.name} is a flow decorator; write it on the flow class (--with adds step decorators: ${known()})`);
    }
    try {
      return { name: parsed.name, options: parseOptions(def, parsed.raw, "cli") };
    } catch (err) {
      throw new UsageError(`--with ${text}: ${(err as Error).message}`);
    }
  });
}

/** Builds every step's setup; a decorator hook that throws fails here, before anything runs. */
export function buildSetups(flow: LoadedFlow, withFlags: readonly string[], isolation: "context" | "process"): Map<string, StepSetup> {
  const fromCli = parseWithFlags(flow, withFlags);
  const info = { name: flow.className, decorators: flow.flowDecorators };
  const setups = new Map<string, StepSetup>();
  for (const node of flow.graph.steps) {
    const plan = defaultPlan();
    if (isolation === "process") plan.launcher = { kind: "process", options: {} };
    // Lowest precedence first; a name given at a higher level replaces the lower one.
    const layers: Array<{ specs: readonly DecoratorSpec[]; cli: boolean }> = [
      { specs: fromCli, cli: true },
      { specs: flow.stepDefaults, cli: false },
      { specs: flow.decorators.get(node.name) ?? [], cli: false },
    ];
    const chosen = chooseDecorators(flow, layers);
    const decorators = chosen.map((c) => c.spec);
    for (const flowDeco of flow.flowDecorators) {
      runPlanHook(flow, flowDeco, plan, { step: node.name, fromCli: false, flow: info, decorators });
    }
    for (const { spec, cli } of chosen) {
      runPlanHook(flow, spec, plan, { step: node.name, fromCli: cli, flow: info, decorators });
    }
    setups.set(node.name, { plan, decorators });
  }
  return setups;
}

/**
 * The decorators of one step from its layers, lowest precedence first: a name given at a higher
 * level replaces the lower one, except a `repeatable` decorator, whose specs add up (the same
 * options twice count once, so `--with card` on a step with `@card()` makes one card).
 */
function chooseDecorators(flow: LoadedFlow, layers: ReadonlyArray<{ specs: readonly DecoratorSpec[]; cli: boolean }>): Array<{ spec: DecoratorSpec; cli: boolean }> {
  const chosen = new Map<string, Array<{ spec: DecoratorSpec; cli: boolean }>>();
  for (const layer of layers) {
    for (const spec of layer.specs) {
      const known = chosen.get(spec.name);
      if (!known || !flow.definitions.get(spec.name)?.repeatable) {
        chosen.set(spec.name, [{ spec, cli: layer.cli }]);
        continue;
      }
      const same = JSON.stringify(spec.options);
      if (!known.some((k) => JSON.stringify(k.spec.options) === same)) known.push({ spec, cli: layer.cli });
    }
  }
  return [...chosen.values()].flat();
}

function runPlanHook(flow: LoadedFlow, spec: DecoratorSpec, plan: TaskPlan, context: PlanContext): void {
  const def = flow.definitions.get(spec.name);
  if (!def?.plan) return;
  try {
    def.plan(spec.options, plan, context);
  } catch (err) {
    throw new DecoratorError(spec.name, "plan", context.step, err);
  }
}

/** The run plan `metaflow task` reads: the steps' shapes and setups, the code, the parameters. */
export function runPlanOf(flow: LoadedFlow, setups: ReadonlyMap<string, StepSetup>, codePackage: string, maxNumSplits: number): RunPlan {
  const steps: Record<string, RunPlan["steps"][string]> = {};
  for (const node of flow.graph.steps) {
    const setup = setups.get(node.name)!;
    steps[node.name] = {
      isJoin: node.isJoin,
      isEnd: node.next.kind === "end",
      decorators: setup.decorators,
      env: setup.plan.env,
      next: staticTransition(node),
      storeErrorIn: setup.plan.onFailure?.storeIn,
    };
  }
  return {
    version: 1,
    flowName: flow.className,
    className: flow.className,
    codePackage,
    flowFile: flow.displayFile,
    parameterNames: flow.parameters.map((p) => p.field),
    maxNumSplits,
    flowDecorators: flow.flowDecorators,
    steps,
  };
}
