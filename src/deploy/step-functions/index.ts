/**
 * Deploying a flow to AWS Step Functions + AWS Batch: the compiler, the `metaflow task` command
 * contract of its task states, the task ids and how a join finds its parents.
 */
import type { DecoratorSpec } from "../../decorators/contract.js";
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
 * Compiles a flow graph with its steps' decorators (as `LoadedFlow.decorators` holds them, `--with`
 * ones added by the caller) into a state machine and its job definitions.
 * @example
 * const sm = compileFlow(flow.graph, flow.decorators, { deployment: "TrainFlow", codePackage, ... });
 */
export function compileFlow(
  graph: FlowGraph,
  decorators: ReadonlyMap<string, readonly DecoratorSpec[]>,
  options: CompileOptions,
): CompiledStateMachine {
  const structure = analyseFlow(graph);
  const settings = new Map(
    graph.steps.map((s) => [s.name, stepRunSettings(decorators.get(s.name) ?? [])]),
  );
  return compileStateMachine(structure, settings, options);
}
