/**
 * Loads a flow file for the scheduler and the CLI: bundle it, read its class (steps, decorators,
 * parameters) in a throwaway context, derive the graph from its source and lint it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { openSerializerScope } from "../datastore/serializers.js";
import { definitionsFor } from "../decorators/registry.js";
import type { DecoratorDefinition, DecoratorSpec } from "../decorators/contract.js";
import { collectDefinitions } from "../decorators/make.js";
import { FlowLoadError, GraphError, type GraphProblem } from "../errors.js";
import { FlowSpec } from "../flow/flowspec.js";
import { isParameterSpec, type ParameterSpec } from "../flow/parameter.js";
import { classDecoratorsOf, stepsOf } from "../flow/steps.js";
import { buildGraph, lintGraph } from "../graph/index.js";
import type { FlowGraph } from "../graph/types.js";
import { bundleFlow, type FlowBundle } from "./bundle.js";
import { compileBundle, createSandbox } from "../task/sandbox.js";

/** A flow ready to run. */
export interface LoadedFlow {
  /** Path as the user gave it (for messages). */
  readonly displayFile: string;
  readonly bundle: FlowBundle;
  readonly graph: FlowGraph;
  readonly className: string;
  readonly parameters: readonly (ParameterSpec & { readonly field: string })[];
  /** Decorators written in code, by step. */
  readonly decorators: ReadonlyMap<string, readonly DecoratorSpec[]>;
  /** Step decorators written on the class: defaults for every step. */
  readonly stepDefaults: readonly DecoratorSpec[];
  /** Flow decorators written on the class, in source order. */
  readonly flowDecorators: readonly DecoratorSpec[];
  /** Every decorator definition the flow can use: the built-ins and those its module defines. */
  readonly definitions: ReadonlyMap<string, DecoratorDefinition<any>>;
}

const FLOW_EXTENSIONS = [".ts", ".mts", ".js", ".mjs", ".cjs", ".tsx"];

/** Loads `file`; throws FlowLoadError for a missing/broken file and GraphError for a bad graph. */
export async function loadFlow(
  file: string,
  library: Record<string, unknown>,
  options: { lint?: boolean } = {},
): Promise<LoadedFlow> {
  const displayFile = file;
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new FlowLoadError(`No such file: ${file} (give the path to a flow file, e.g. examples/helloworld.ts)`, file);
  }
  if (!fs.statSync(abs).isFile() || !FLOW_EXTENSIONS.includes(path.extname(abs))) {
    throw new FlowLoadError(`${file} is not a flow file: expected a ${FLOW_EXTENSIONS.join(", ")} file`, file);
  }
  const bundle = await bundleFlow(abs);

  const sandbox = createSandbox({
    env: { ...process.env },
    argv: [process.argv[0] ?? "node", abs],
    write: (stream, text) => process.stderr.write(stream === "stderr" ? text : ""),
    onAsyncError: () => undefined,
  });
  let exports: Record<string, unknown>;
  let own: Map<string, DecoratorDefinition<any>>;
  // What the module registers (serializers, its apache-arrow) belongs to this throwaway context.
  const closeSerializers = openSerializerScope();
  try {
    const loaded = collectDefinitions(() => sandbox.load(compileBundle(bundle.code, `${abs}.bundle.cjs`), abs, library));
    exports = loaded.value;
    own = loaded.definitions;
  } catch (err) {
    throw new FlowLoadError(`Loading the flow module threw: ${(err as Error)?.message ?? String(err)}`, file);
  } finally {
    closeSerializers();
    sandbox.dispose();
  }
  const flowClass = pickFlowClass(exports, file);
  const className = flowClass.name;

  const source = fs.readFileSync(abs, "utf8");
  const graph = buildGraph(displayFile, source, { className });

  const problems: GraphProblem[] = options.lint === false ? [] : [...lintGraph(graph)];
  const runtimeSteps = stepsOf(flowClass);
  const decorators = new Map<string, DecoratorSpec[]>();
  for (const s of runtimeSteps) decorators.set(s.name, s.decorators);
  for (const node of graph.steps) {
    if (!decorators.has(node.name)) {
      problems.push({
        step: node.name,
        file: displayFile,
        line: node.line,
        message: `the method is not registered as a step at run time.`,
        fix: `decorate it with @step imported from "metaflow-ts".`,
      });
    }
  }
  if (problems.length > 0) throw new GraphError(problems);
  let definitions: Map<string, DecoratorDefinition<any>>;
  try {
    definitions = definitionsFor(library, own);
  } catch (err) {
    throw new FlowLoadError((err as Error).message, file);
  }
  const classDecorators = classDecoratorsOf(flowClass);
  for (const d of [...classDecorators.flow, ...classDecorators.stepDefaults, ...[...decorators.values()].flat()]) {
    if (!definitions.has(d.name)) throw new FlowLoadError(`@${d.name} is not a known decorator`, file);
  }

  let instance: Record<string, unknown>;
  try {
    instance = new flowClass() as unknown as Record<string, unknown>;
  } catch (err) {
    throw new FlowLoadError(`Constructing ${className} threw: ${(err as Error)?.message ?? String(err)}`, file);
  }
  const parameters: (ParameterSpec & { field: string })[] = [];
  for (const [prop, value] of Object.entries(instance)) {
    if (!isParameterSpec(value)) continue;
    if (parameters.some((p) => p.name === value.name)) {
      throw new FlowLoadError(`Two parameters are named '${value.name}'; give each a unique name`, file);
    }
    parameters.push({ ...value, field: prop });
  }
  return {
    displayFile,
    bundle,
    graph,
    className,
    parameters,
    decorators,
    stepDefaults: classDecorators.stepDefaults,
    flowDecorators: classDecorators.flow,
    definitions,
  };
}

function isFlowClass(v: unknown): v is new () => FlowSpec {
  return typeof v === "function" && v.prototype instanceof FlowSpec;
}

function pickFlowClass(exports: Record<string, unknown>, file: string): new () => FlowSpec {
  if (isFlowClass(exports.default)) return exports.default;
  const found = [...new Set(Object.values(exports).filter(isFlowClass))];
  if (found.length === 1) return found[0]!;
  if (found.length > 1) {
    throw new FlowLoadError(
      `${file} exports several FlowSpec subclasses (${found.map((c) => c.name).join(", ")}); mark the one to run as 'export default'`,
      file,
    );
  }
  throw new FlowLoadError(
    `${file} exports no FlowSpec subclass; write 'export default class MyFlow extends FlowSpec { ... }' with a start and an end step`,
    file,
  );
}
