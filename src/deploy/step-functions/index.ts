/**
 * Deploying a flow to AWS Step Functions + AWS Batch: the compiler, the `metaflow task` command
 * contract of its task states, the task ids and how a join finds its parents.
 */
import { defaultPlan, type TaskPlan } from "../../decorators/contract.js";
import type { FlowGraph } from "../../graph/index.js";
import { compileStateMachine, type CompiledStateMachine, type CompileOptions } from "./compile.js";
import { stepRunSettings } from "./settings.js";
import { analyseFlow } from "./structure.js";

export { compileStateMachine, type CompiledStateMachine, type CompileOptions } from "./compile.js";
export * from "./command.js";
export * from "../../task/command.js";
export {
  outputKey,
  parseTaskId,
  startOutputKey,
  taskIdFor,
  TASK_ID_PREFIX,
  type TaskPosition,
} from "../../task/task-ids.js";
export {
  resolveJoinParents,
  JoinParentsError,
  type JoinShape,
  type TransitionLookup,
} from "../../task/join-parents.js";
export {
  parseBatchOptions,
  stepRunSettings,
  type BatchOptions,
  type StepRunSettings,
} from "./settings.js";
export { analyseFlow, type FlowStructure } from "./structure.js";
export {
  registerJobDefinitionInput,
  type BatchDefaults,
  type JobDefinitionSpec,
} from "../../launchers/batch-jobs.js";
export type { AslMachine, AslState } from "./asl.js";

/**
 * Compiles a flow graph with its steps' plans (as `buildSetups` makes them from every decorator's
 * parent-side hook; a step without one runs with the default plan) into a state machine and its
 * job definitions.
 * @example
 * const sm = compileFlow(flow.graph, new Map([...setups].map(([s, x]) => [s, x.plan])), { deployment: "TrainFlow", ... });
 */
export function compileFlow(
  graph: FlowGraph,
  plans: ReadonlyMap<string, TaskPlan>,
  options: CompileOptions,
): CompiledStateMachine {
  const structure = analyseFlow(graph);
  const settings = new Map(
    graph.steps.map((s) => [s.name, stepRunSettings(plans.get(s.name) ?? defaultPlan())]),
  );
  return compileStateMachine(structure, settings, options);
}
