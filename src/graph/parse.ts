// Derives a flow's graph from its source text: the flow class, its `@step` methods and the
// `this.next(...)` call that ends each of them. The file is parsed, never executed, so `show` and
// `check` work on flows whose imports would fail and report every problem at once.
import { basename, extname } from "node:path";
import { parse, type ParserPlugin } from "@babel/parser";
import type * as t from "@babel/types";
import { FlowLoadError, type GraphProblem } from "../errors.js";
import type { FlowGraph, NodeKind, StepNode, Transition } from "./types.js";

/** Options for {@link buildGraph}. */
export interface BuildGraphOptions {
  /**
   * Name of the flow class to read.
   * @default the default-exported class, else the only exported class that extends another
   */
  className?: string;
}

/**
 * Builds the graph of the flow class in `source` (the text of `file`), collecting malformed
 * transitions in `sourceProblems` instead of throwing.
 * @example
 * const graph = buildGraph("flows/train.ts", readFileSync("flows/train.ts", "utf8"));
 */
export function buildGraph(
  file: string,
  source: string,
  options: BuildGraphOptions = {},
): FlowGraph {
  const program = parseSource(file, source);
  const flowClass = findFlowClass(file, program, options.className);
  const reader = new SourceReader(file, source);
  const problems: GraphProblem[] = [];

  const parsedSteps: ParsedStep[] = [];
  for (const member of flowClass.node.body.body) {
    const parsed = readStep(member, reader, problems);
    if (parsed) parsedSteps.push(parsed);
  }
  reportDuplicateSteps(parsedSteps, reader, problems);

  return {
    className: flowClass.node.id?.name ?? basename(file, extname(file)),
    file,
    classLine: line(flowClass.node.id ?? flowClass.node),
    doc: reader.docAbove(flowClass.anchor),
    decorators: (flowClass.node.decorators ?? []).map((d) => decoratorName(d.expression)),
    steps: linkSteps(parsedSteps),
    sourceProblems: problems,
  };
}

// ---------------------------------------------------------------------------------------------
// Parsing and finding the flow class

function parseSource(file: string, source: string): t.Program {
  const isTypeScript = /\.(ts|mts|cts|tsx)$/i.test(file);
  const plugins: ParserPlugin[] = [["decorators", {}]];
  if (isTypeScript) plugins.push("typescript");
  if (/\.(tsx|jsx)$/i.test(file)) plugins.push("jsx");
  try {
    return parse(source, { sourceType: "module", plugins }).program;
  } catch (err) {
    const e = err as Error & { loc?: { line: number; column: number } };
    const where = e.loc ? `${file}:${e.loc.line}:${e.loc.column + 1}` : file;
    // Babel appends "(line:column)" to its messages; the location is already in front.
    const reason = e.message.replace(/\s*\(\d+:\d+\)$/, "");
    throw new FlowLoadError(`${where}: the flow file does not parse: ${reason}`, file);
  }
}

/** A top-level class and the statement its doc comment is attached to. */
interface ClassCandidate {
  readonly node: t.ClassDeclaration;
  /** The `export` statement wrapping the class, or the class itself; comments attach to it. */
  readonly anchor: t.Node;
  exported: boolean;
  isDefault: boolean;
}

function findFlowClass(
  file: string,
  program: t.Program,
  className: string | undefined,
): ClassCandidate {
  const candidates = collectTopLevelClasses(program);

  if (className !== undefined) {
    const named = candidates.find((c) => c.node.id?.name === className);
    if (named) return named;
    const known = candidates.map((c) => c.node.id?.name).filter(Boolean);
    throw new FlowLoadError(
      `${file} has no class named '${className}'` +
        (known.length ? `; its classes are: ${known.join(", ")}.` : "; it declares no classes."),
      file,
    );
  }

  const extending = candidates.filter((c) => c.exported && c.node.superClass);
  const defaultClass = extending.find((c) => c.isDefault);
  if (defaultClass) return defaultClass;
  if (extending.length === 1 && extending[0]) return extending[0];

  if (extending.length > 1) {
    const names = extending.map((c) => c.node.id?.name ?? "(anonymous)").join(", ");
    throw new FlowLoadError(
      `${file} exports several classes that extend another class (${names}), so the flow is ambiguous. ` +
        `Export the flow class as the default export (\`export default class MyFlow extends FlowSpec\`) ` +
        `or name it explicitly.`,
      file,
    );
  }
  throw new FlowLoadError(
    `${file} exports no FlowSpec subclass. Declare the flow as ` +
      `\`export default class MyFlow extends FlowSpec { @step start() {...} @step end() {} }\`.`,
    file,
  );
}

function collectTopLevelClasses(program: t.Program): ClassCandidate[] {
  const candidates: ClassCandidate[] = [];
  // `export { A }`, `export { A as default }` and `export default A` refer to classes by name.
  const exportedNames = new Set<string>();
  const defaultNames = new Set<string>();

  for (const statement of program.body) {
    if (statement.type === "ClassDeclaration") {
      candidates.push({ node: statement, anchor: statement, exported: false, isDefault: false });
    } else if (statement.type === "ExportNamedDeclaration") {
      if (statement.declaration?.type === "ClassDeclaration") {
        candidates.push({
          node: statement.declaration,
          anchor: statement,
          exported: true,
          isDefault: false,
        });
      }
      if (!statement.source) {
        for (const spec of statement.specifiers) {
          if (spec.type !== "ExportSpecifier") continue;
          const exportedAs =
            spec.exported.type === "Identifier" ? spec.exported.name : spec.exported.value;
          exportedNames.add(spec.local.name);
          if (exportedAs === "default") defaultNames.add(spec.local.name);
        }
      }
    } else if (statement.type === "ExportDefaultDeclaration") {
      const decl = statement.declaration;
      if (decl.type === "ClassDeclaration") {
        candidates.push({ node: decl, anchor: statement, exported: true, isDefault: true });
      } else if (decl.type === "Identifier") {
        exportedNames.add(decl.name);
        defaultNames.add(decl.name);
      }
    }
  }

  for (const candidate of candidates) {
    const name = candidate.node.id?.name;
    if (name === undefined) continue;
    if (exportedNames.has(name)) candidate.exported = true;
    if (defaultNames.has(name)) candidate.isDefault = true;
  }
  return candidates;
}

// ---------------------------------------------------------------------------------------------
// Reading steps

/** What one `@step` method says, before edges between steps are linked up. */
interface ParsedStep {
  readonly name: string;
  readonly line: number;
  readonly isAsync: boolean;
  readonly isJoin: boolean;
  readonly decorators: string[];
  readonly doc: string;
  readonly next: Transition;
  readonly nextLine: number;
  readonly artifacts: readonly { readonly name: string; readonly line: number }[];
}

function readStep(
  member: t.Node,
  reader: SourceReader,
  problems: GraphProblem[],
): ParsedStep | undefined {
  if (member.type !== "ClassMethod" || member.kind !== "method") return undefined;
  const decoratorNames = (member.decorators ?? []).map((d) => decoratorName(d.expression));
  if (!decoratorNames.includes("step")) return undefined;
  if (member.computed || member.key.type !== "Identifier") {
    problems.push(
      reader.problem(
        member,
        undefined,
        "A @step method must have a plain name.",
        "Name the step method with an identifier, e.g. `@step train() {...}`.",
      ),
    );
    return undefined;
  }

  const name = member.key.name;
  const calls = findNextCalls(member.body);
  const stepProblems = (node: t.Node, message: string, fix: string): void => {
    problems.push(reader.problem(node, name, message, fix));
  };

  const finalCall = lastStatementNextCall(member.body);
  const chosen = finalCall ?? calls[0];
  let next: Transition = { kind: "end" };

  if (name === "end") {
    // `end` is terminal by definition; keep its transition `end` so one mistake is one problem.
    for (const call of calls) {
      stepProblems(
        call,
        "The end step calls this.next, but end is the last step of the flow.",
        "Remove the this.next(...) call from end.",
      );
    }
  } else if (!chosen) {
    stepProblems(
      member.key,
      `Step '${name}' does not call this.next, so the flow cannot continue after it.`,
      `End the step with this.next(this.<step>), e.g. this.next(this.end).`,
    );
  } else {
    next = readTransition(chosen, name, reader, problems);
    for (const call of calls) {
      if (call === chosen) continue;
      stepProblems(
        call,
        `Step '${name}' calls this.next more than once; a step has exactly one transition.`,
        `Call this.next once, as the last statement. To choose the next step at run time use a switch: ` +
          `this.next({ a: this.a, b: this.b }, { condition: "<artifact>" }).`,
      );
    }
    if (!finalCall) {
      stepProblems(
        chosen,
        `In step '${name}', this.next(...) is not the last statement of the step.`,
        `Move the this.next(...) call to the end of the step body, after all other statements.`,
      );
    }
  }

  return {
    name,
    line: line(member.key),
    isAsync: member.async,
    isJoin: member.params.length > 0,
    decorators: decoratorNames.filter((d) => d !== "step"),
    doc: reader.docAbove(member),
    next,
    nextLine: chosen ? line(chosen) : line(member.key),
    artifacts: findAssignedArtifacts(member.body),
  };
}

/** Artifacts a step assigns with a name written out: `this.x = ...`, `this["x"] += ...`. */
function findAssignedArtifacts(body: t.Node): { name: string; line: number }[] {
  const found: { name: string; line: number }[] = [];
  walk(body, (node) => {
    if (node.type !== "AssignmentExpression" || node.left.type !== "MemberExpression") return;
    const { object, property, computed } = node.left;
    if (object.type !== "ThisExpression") return;
    const name =
      !computed && property.type === "Identifier"
        ? property.name
        : computed && property.type === "StringLiteral"
          ? property.value
          : undefined;
    if (name !== undefined) found.push({ name, line: line(node) });
  });
  return found;
}

/** The name a decorator is known by: `@retry`, `@retry({...})` and `@deco.retry` are all `retry`. */
function decoratorName(expression: t.Expression): string {
  const target = expression.type === "CallExpression" ? expression.callee : expression;
  if (target.type === "Identifier") return target.name;
  if (
    target.type === "MemberExpression" &&
    !target.computed &&
    target.property.type === "Identifier"
  ) {
    return target.property.name;
  }
  return "?";
}

function isThisNextCall(node: t.Node): node is t.CallExpression {
  return (
    node.type === "CallExpression" &&
    node.callee.type === "MemberExpression" &&
    node.callee.object.type === "ThisExpression" &&
    !node.callee.computed &&
    node.callee.property.type === "Identifier" &&
    node.callee.property.name === "next"
  );
}

/** Every `this.next(...)` call anywhere in the body, nested blocks and callbacks included. */
function findNextCalls(body: t.Node): t.CallExpression[] {
  const calls: t.CallExpression[] = [];
  walk(body, (node) => {
    if (isThisNextCall(node)) calls.push(node);
  });
  return calls;
}

/** The `this.next(...)` call forming the body's last statement (`return this.next(...)` counts too). */
function lastStatementNextCall(body: t.BlockStatement): t.CallExpression | undefined {
  const last = body.body.at(-1);
  const expression =
    last?.type === "ExpressionStatement"
      ? last.expression
      : last?.type === "ReturnStatement"
        ? last.argument
        : undefined;
  return expression && isThisNextCall(expression) ? expression : undefined;
}

const SKIPPED_KEYS = new Set([
  "loc",
  "leadingComments",
  "trailingComments",
  "innerComments",
  "extra",
]);

function isNode(value: unknown): value is t.Node {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { type?: unknown }).type === "string"
  );
}

/** Visits every node under `node`; a generic walk keeps the parser as the only dependency. */
function walk(node: t.Node, visit: (node: t.Node) => void): void {
  visit(node);
  for (const [key, value] of Object.entries(node)) {
    if (SKIPPED_KEYS.has(key)) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) walk(item, visit);
    } else if (isNode(value)) {
      walk(value, visit);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading one `this.next(...)` call

const NEXT_OPTIONS = ["foreach", "condition"] as const;

function readTransition(
  call: t.CallExpression,
  step: string,
  reader: SourceReader,
  problems: GraphProblem[],
): Transition {
  const report = (node: t.Node, message: string, fix: string): void => {
    problems.push(reader.problem(node, step, message, fix));
  };
  const args = call.arguments;
  const first = args[0];
  if (!first) {
    report(
      call,
      `Step '${step}' calls this.next() without a target step.`,
      `Name the next step: this.next(this.<step>).`,
    );
    return { kind: "end" };
  }

  // A switch: this.next({ case: this.step, ... }, { condition: "artifact" }).
  if (first.type === "ObjectExpression") {
    const cases = readSwitchCases(first, step, reader, problems);
    if (first.properties.length === 0) {
      report(
        first,
        `Step '${step}' passes an empty case object to this.next.`,
        `List the cases: this.next({ a: this.a, b: this.b }, { condition: "<artifact>" }).`,
      );
    }
    const options = readOptions(args.slice(1), step, reader, problems);
    if (options.foreach !== undefined) {
      report(
        call,
        `Step '${step}' passes a case object to this.next together with foreach.`,
        `Use { condition: "<artifact>" } for a switch, or this.next(this.<step>, { foreach: "<artifact>" }) for a foreach.`,
      );
    }
    if (options.condition === undefined) {
      if (!options.reported) {
        report(
          first,
          `Step '${step}' passes a case object to this.next but no condition.`,
          `Add the artifact that picks the case: this.next({ ... }, { condition: "<artifact>" }).`,
        );
      }
      return { kind: "end" };
    }
    return { kind: "switch", cases, condition: options.condition };
  }

  const targets: string[] = [];
  let optionNodes: t.Node[] = [];
  for (const [index, arg] of args.entries()) {
    const isLast = index === args.length - 1;
    if (isLast && index > 0 && arg.type === "ObjectExpression") {
      optionNodes = [arg];
      break;
    }
    const target = stepReference(arg);
    if (target !== undefined) targets.push(target);
    else
      report(
        arg,
        `Step '${step}' passes ${reader.quote(arg)} to this.next; only step references like this.train are allowed.`,
        stepReferenceFix(arg),
      );
  }

  const options = readOptions(optionNodes, step, reader, problems);
  if (options.condition !== undefined) {
    report(
      call,
      `Step '${step}' gives this.next a condition but no case object.`,
      `Pass the cases as an object: this.next({ a: this.a, b: this.b }, { condition: "${options.condition}" }).`,
    );
  }
  if (options.foreach !== undefined) {
    if (args.length !== 2) {
      report(
        call,
        `Step '${step}' uses foreach with ${args.length - 1} target steps; a foreach fans out to exactly one step.`,
        `Write this.next(this.<step>, { foreach: "${options.foreach}" }) with a single step.`,
      );
    }
    if (targets[0] !== undefined)
      return { kind: "foreach", to: targets[0], foreach: options.foreach };
  }
  if (targets.length === 0) return { kind: "end" };
  if (targets.length === 1 && targets[0] !== undefined) return { kind: "linear", to: targets[0] };
  return { kind: "branch", to: targets };
}

function readSwitchCases(
  object: t.ObjectExpression,
  step: string,
  reader: SourceReader,
  problems: GraphProblem[],
): Record<string, string> {
  const cases: Record<string, string> = {};
  for (const property of object.properties) {
    const key = property.type === "ObjectProperty" ? propertyKey(property) : undefined;
    if (property.type !== "ObjectProperty" || key === undefined) {
      problems.push(
        reader.problem(
          property,
          step,
          `Step '${step}' has a switch case ${reader.quote(property)} whose key is not a plain name or string.`,
          `Write each case as \`value: this.<step>\`, e.g. { high: this.high }.`,
        ),
      );
      continue;
    }
    const target = stepReference(property.value);
    if (target === undefined) {
      problems.push(
        reader.problem(
          property,
          step,
          `Step '${step}' maps switch case '${key}' to ${reader.quote(property.value)}, which is not a step reference.`,
          stepReferenceFix(property.value),
        ),
      );
      continue;
    }
    cases[key] = target;
  }
  return cases;
}

function propertyKey(property: t.ObjectProperty): string | undefined {
  const key = property.key;
  if (key.type === "Identifier" && !property.computed) return key.name;
  if (key.type === "StringLiteral") return key.value;
  if (key.type === "NumericLiteral") return String(key.value);
  return undefined;
}

/** `this.train` → `"train"`; anything else → undefined. */
function stepReference(node: t.Node): string | undefined {
  if (
    node.type === "MemberExpression" &&
    node.object.type === "ThisExpression" &&
    !node.computed &&
    node.property.type === "Identifier"
  ) {
    return node.property.name;
  }
  return undefined;
}

function stepReferenceFix(node: t.Node): string {
  if (node.type === "StringLiteral") return `Refer to the step method itself: this.${node.value}.`;
  if (node.type === "Identifier")
    return `Refer to the step method through this: this.${node.name}.`;
  const called = node.type === "CallExpression" ? stepReference(node.callee) : undefined;
  if (called !== undefined) return `Pass the step without calling it: this.${called}.`;
  return "Pass step methods as this.<step>, e.g. this.next(this.train).";
}

interface NextOptions {
  foreach?: string;
  condition?: string;
  /** True when a problem with the options was already reported. */
  reported: boolean;
}

function readOptions(
  nodes: readonly t.Node[],
  step: string,
  reader: SourceReader,
  problems: GraphProblem[],
): NextOptions {
  const options: NextOptions = { reported: false };
  const report = (node: t.Node, message: string, fix: string): void => {
    options.reported = true;
    problems.push(reader.problem(node, step, message, fix));
  };
  const [node, ...extra] = nodes;
  for (const surplus of extra) {
    report(
      surplus,
      `Step '${step}' passes an extra argument ${reader.quote(surplus)} to this.next.`,
      `Pass at most one options object after the cases: { condition: "<artifact>" }.`,
    );
  }
  if (!node) return options;
  if (node.type !== "ObjectExpression") {
    report(
      node,
      `Step '${step}' passes ${reader.quote(node)} as this.next options; expected an object.`,
      `Write the options as { foreach: "<artifact>" } or { condition: "<artifact>" }.`,
    );
    return options;
  }

  for (const property of node.properties) {
    const key = property.type === "ObjectProperty" ? propertyKey(property) : undefined;
    if (
      property.type !== "ObjectProperty" ||
      key === undefined ||
      !(NEXT_OPTIONS as readonly string[]).includes(key)
    ) {
      report(
        property,
        `Step '${step}' passes an unknown this.next option ${reader.quote(property)}.`,
        `The only options are foreach and condition, e.g. { foreach: "items" }.`,
      );
      continue;
    }
    const value = stringValue(property.value);
    if (value === undefined) {
      report(
        property.value,
        `Step '${step}' sets ${key} to ${reader.quote(property.value)}; it must be a string literal naming an artifact.`,
        `Write the artifact name as a string: { ${key}: "items" }.`,
      );
      continue;
    }
    options[key as (typeof NEXT_OPTIONS)[number]] = value;
  }
  if (options.foreach !== undefined && options.condition !== undefined) {
    report(
      node,
      `Step '${step}' gives this.next both foreach and condition.`,
      `Use foreach to fan out over an artifact, or condition to pick one case, not both.`,
    );
    delete options.condition;
  }
  return options;
}

/** The value of a string literal or of a template literal without substitutions. */
function stringValue(node: t.Node): string | undefined {
  if (node.type === "StringLiteral") return node.value;
  if (node.type === "TemplateLiteral" && node.expressions.length === 0)
    return node.quasis[0]?.value.cooked ?? undefined;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Linking steps into a graph

function reportDuplicateSteps(
  steps: readonly ParsedStep[],
  reader: SourceReader,
  problems: GraphProblem[],
): void {
  const seen = new Set<string>();
  for (const step of steps) {
    if (seen.has(step.name)) {
      problems.push({
        step: step.name,
        file: reader.file,
        line: step.line,
        message: `Step '${step.name}' is defined twice; the later definition silently replaces the earlier one.`,
        fix: `Rename or remove one of the two '${step.name}' methods.`,
      });
    }
    seen.add(step.name);
  }
}

function targetsOf(next: Transition): string[] {
  switch (next.kind) {
    case "linear":
    case "foreach":
      return [next.to];
    case "branch":
      return [...next.to];
    case "switch":
      return [...new Set(Object.values(next.cases))];
    case "end":
      return [];
  }
}

function linkSteps(parsed: readonly ParsedStep[]): StepNode[] {
  const predecessors = new Map<string, string[]>();
  for (const step of parsed) {
    for (const target of targetsOf(step.next)) {
      const list = predecessors.get(target) ?? [];
      if (!list.includes(step.name)) list.push(step.name);
      predecessors.set(target, list);
    }
  }
  return parsed.map((step) => {
    const kind: NodeKind = step.isJoin ? "join" : step.next.kind;
    return { ...step, kind, out: targetsOf(step.next), in: predecessors.get(step.name) ?? [] };
  });
}

// ---------------------------------------------------------------------------------------------
// Source positions and comments

function line(node: t.Node): number {
  return node.loc?.start.line ?? 1;
}

function startLine(comment: t.Comment): number {
  return comment.loc?.start.line ?? 1;
}

function endLine(comment: t.Comment): number {
  return comment.loc?.end.line ?? 1;
}

/** Source text and file name, for positions, quotes and doc comments. */
class SourceReader {
  private readonly lines: string[];

  constructor(
    readonly file: string,
    private readonly source: string,
  ) {
    this.lines = source.split(/\r?\n/);
  }

  /** A problem located at `node`. */
  problem(node: t.Node, step: string | undefined, message: string, fix: string): GraphProblem {
    return {
      ...(step === undefined ? {} : { step }),
      file: this.file,
      line: line(node),
      message,
      fix,
    };
  }

  /** The node's source, shortened, in backquotes for a message. */
  quote(node: t.Node): string {
    const text = this.source.slice(node.start ?? 0, node.end ?? 0).replace(/\s+/g, " ");
    return `\`${text.length > 40 ? `${text.slice(0, 37)}...` : text}\``;
  }

  /**
   * The doc of a declaration: the JSDoc block right above it, or the run of `//` lines ending on
   * the line just above it. Comments trailing code on their line belong to that code, not here.
   */
  docAbove(node: t.Node): string {
    const comments = (node.leadingComments ?? []).filter((c) => this.startsItsLine(c));
    const last = comments.at(-1);
    if (!last) return "";
    if (last.type === "CommentBlock")
      return last.value.startsWith("*") ? stripJsDoc(last.value) : "";

    if (endLine(last) < line(node) - 1) return "";
    const run = [last];
    for (let i = comments.length - 2; i >= 0; i--) {
      const comment = comments[i];
      const after = run[0];
      if (comment?.type !== "CommentLine" || !after || endLine(comment) !== startLine(after) - 1)
        break;
      run.unshift(comment);
    }
    return dedent(run.map((c) => c.value));
  }

  private startsItsLine(comment: t.Comment): boolean {
    const text = this.lines[startLine(comment) - 1] ?? "";
    return text.slice(0, comment.loc?.start.column ?? 0).trim() === "";
  }
}

function stripJsDoc(value: string): string {
  const lines = value
    .replace(/^\*+/, "")
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s*\*(?!\/) ?/, ""));
  return dedent(lines);
}

/** Removes the common indentation and surrounding blank lines, keeping the inner line breaks. */
function dedent(lines: readonly string[]): string {
  const trimmed = lines.map((l) => l.trimEnd());
  const indents = trimmed
    .filter((l) => l.trim() !== "")
    .map((l) => l.length - l.trimStart().length);
  const common = indents.length ? Math.min(...indents) : 0;
  return trimmed
    .map((l) => l.slice(common))
    .join("\n")
    .trim();
}
