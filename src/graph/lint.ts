// Checks a flow graph the way `metaflow check` does: each rule is one small function that returns
// problems whose message names the step and whose fix says what to change in the flow file.
import type { GraphProblem } from "../errors.js";
import { artifactNameProblem, closestName, nameProblem, quoteList, shortName } from "./names.js";
import type { FlowGraph, StepNode } from "./types.js";

/** What every lint rule receives: the graph plus indexes derived from it once. */
export interface LintContext {
  readonly graph: FlowGraph;
  readonly steps: ReadonlyMap<string, StepNode>;
  /** A problem located in the flow file. */
  problem(step: string | undefined, line: number, message: string, fix: string): GraphProblem;
}

/** A named lint rule. */
export interface LintRule {
  readonly name: string;
  readonly check: (ctx: LintContext) => GraphProblem[];
}

/** The rules {@link lintGraph} applies, in order. */
export const lintRules: readonly LintRule[] = [
  { name: "has-start", check: checkHasStart },
  { name: "has-end", check: checkHasEnd },
  { name: "known-targets", check: checkKnownTargets },
  { name: "reachable", check: checkReachable },
  { name: "acyclic", check: checkAcyclic },
  { name: "splits-and-joins", check: checkSplitsAndJoins },
  { name: "names", check: checkNames },
];

/**
 * Returns every problem with the graph (the source problems found while parsing first, then each
 * lint rule's), ordered by line; an empty array means the flow can run.
 */
export function lintGraph(graph: FlowGraph): GraphProblem[] {
  const ctx: LintContext = {
    graph,
    steps: new Map(graph.steps.map((s) => [s.name, s])),
    problem: (step, line, message, fix) => ({
      ...(step === undefined ? {} : { step }),
      file: graph.file,
      line,
      message,
      fix,
    }),
  };
  const problems = [...graph.sourceProblems, ...lintRules.flatMap((rule) => rule.check(ctx))];
  return problems.sort((a, b) => a.line - b.line);
}

// ---------------------------------------------------------------------------------------------
// Rules

function checkHasStart(ctx: LintContext): GraphProblem[] {
  if (ctx.steps.has("start")) return [];
  return [
    ctx.problem(
      "start",
      ctx.graph.classLine,
      `The flow ${ctx.graph.className} has no start step; every flow begins at 'start'.`,
      `Add a step method \`@step start() { this.next(this.<first step>); }\`.`,
    ),
  ];
}

function checkHasEnd(ctx: LintContext): GraphProblem[] {
  if (ctx.steps.has("end")) return [];
  return [
    ctx.problem(
      "end",
      ctx.graph.classLine,
      `The flow ${ctx.graph.className} has no end step; every flow finishes at 'end'.`,
      `Add a step method \`@step end() {}\` and send the last step to it with this.next(this.end).`,
    ),
  ];
}

function checkKnownTargets(ctx: LintContext): GraphProblem[] {
  const names = [...ctx.steps.keys()];
  const problems: GraphProblem[] = [];
  for (const step of ctx.graph.steps) {
    for (const target of step.out) {
      // A missing end is reported once by has-end, not again at every step that goes to it.
      if (ctx.steps.has(target) || (target === "end" && !ctx.steps.has("end"))) continue;
      const guess = closestName(target, names);
      problems.push(
        ctx.problem(
          step.name,
          step.nextLine,
          `Step '${step.name}' goes to '${target}', which is not a step of this flow (its steps are: ${names.join(", ")}).`,
          guess
            ? `Did you mean this.${guess}? Otherwise add a @step method named '${target}'.`
            : `Point this.next at one of the existing steps, or add a @step method named '${target}'.`,
        ),
      );
    }
  }
  return problems;
}

function checkReachable(ctx: LintContext): GraphProblem[] {
  if (!ctx.steps.has("start")) return [];
  const reached = reachableFromStart(ctx);
  return ctx.graph.steps
    .filter((s) => !reached.has(s.name))
    .map((s) =>
      ctx.problem(
        s.name,
        s.line,
        `Step '${s.name}' cannot be reached from start, so it never runs.`,
        `Call this.next(this.${s.name}) from a step that runs before it, or delete the step.`,
      ),
    );
}

function checkAcyclic(ctx: LintContext): GraphProblem[] {
  const problems: GraphProblem[] = [];
  // Classic three-colour DFS: an edge to a step still on the stack closes a cycle.
  const state = new Map<string, "active" | "done">();
  const path: string[] = [];

  const visit = (name: string): void => {
    state.set(name, "active");
    path.push(name);
    const step = ctx.steps.get(name);
    for (const target of step ? loopFreeTargets(ctx, step) : []) {
      if (state.get(target) === "active" && step) {
        const cycle = [...path.slice(path.indexOf(target)), target].join(" → ");
        problems.push(
          ctx.problem(
            step.name,
            step.nextLine,
            `Step '${step.name}' goes back to '${target}', which makes a cycle: ${cycle}. Flows are acyclic except for a switch that repeats its own step.`,
            `To repeat a step, end it with a switch that names itself: this.next({ again: this.${target}, done: this.<next step> }, { condition: "<artifact>" }); otherwise point this.next forward.`,
          ),
        );
      } else if (!state.has(target)) {
        visit(target);
      }
    }
    path.pop();
    state.set(name, "done");
  };

  for (const step of ctx.graph.steps) if (!state.has(step.name)) visit(step.name);
  return problems;
}

/** Flow, step and artifact names that a pathspec or the metadata service would refuse, caught before any run. */
function checkNames(ctx: LintContext): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const { className, classLine } = ctx.graph;
  const flowProblem = nameProblem(className);
  if (flowProblem) {
    problems.push(
      ctx.problem(
        undefined,
        classLine,
        `The flow class name '${shortName(className)}' ${flowProblem}; the same name must work in every setup (pathspecs such as Flow/run/step, the metadata service).`,
        `Rename the class, e.g. 'MyFlow'.`,
      ),
    );
  }
  for (const step of ctx.graph.steps) {
    const stepProblem = nameProblem(step.name);
    if (stepProblem) {
      problems.push(
        ctx.problem(
          step.name,
          step.line,
          `Step name '${shortName(step.name)}' ${stepProblem}; the same name must work in every setup (pathspecs, the metadata service).`,
          `Rename the step method (and every this.next that points to it), e.g. 'train'.`,
        ),
      );
    }
    for (const artifact of step.artifacts ?? []) {
      const artifactProblem = artifactNameProblem(artifact.name);
      if (!artifactProblem) continue;
      problems.push(
        ctx.problem(
          step.name,
          artifact.line,
          `Step '${step.name}' assigns the artifact '${shortName(artifact.name)}', whose name ${artifactProblem}.`,
          `Give the artifact a shorter, printable name.`,
        ),
      );
    }
  }
  return problems;
}

/**
 * Checks that every branch and foreach is closed by a join, and that joins close the innermost
 * open split. Open splits are propagated as a stack along the edges from start in topological
 * order; a join pops the top split, so all paths into it must carry the same stack.
 */
function checkSplitsAndJoins(ctx: LintContext): GraphProblem[] {
  const order = ctx.steps.has("start") ? topologicalOrder(ctx) : undefined;
  // Without a start or with a cycle the propagation has no meaning; other rules report those.
  if (!order) return [];

  const analysis = new SplitAnalysis(ctx);
  for (const name of order) analysis.visit(name);
  return analysis.problems;
}

// ---------------------------------------------------------------------------------------------
// Split/join analysis

/** One split that is open on a path: the step that split, and which of its branches the path took. */
interface OpenSplit {
  readonly split: string;
  readonly branch: string;
}

type SplitStack = readonly OpenSplit[];

/** A path arriving at a step: where it came from and the splits open on it. */
interface Arrival {
  readonly from: string;
  readonly stack: SplitStack;
}

class SplitAnalysis {
  readonly problems: GraphProblem[] = [];
  private readonly arrivals = new Map<string, Arrival[]>();
  /** Splits already reported, so one mistake is reported once, not at every step after it. */
  private readonly reported = new Set<string>();

  constructor(private readonly ctx: LintContext) {
    this.arrivals.set("start", [{ from: "", stack: [] }]);
  }

  visit(name: string): void {
    const step = this.ctx.steps.get(name);
    const arrivals = this.arrivals.get(name);
    if (!step || !arrivals) return;
    const stack = step.isJoin ? this.enterJoin(step, arrivals) : this.enterStep(step, arrivals);

    const next = step.next;
    if (next.kind === "branch" || next.kind === "foreach") {
      for (const target of step.out)
        this.send(step.name, target, [...stack, { split: step.name, branch: target }]);
    } else if (next.kind === "end") {
      if (step.name === "end") this.reportUnclosed(stack);
    } else {
      for (const target of loopFreeTargets(this.ctx, step)) this.send(step.name, target, stack);
    }
  }

  private send(from: string, to: string, stack: SplitStack): void {
    if (!this.ctx.steps.has(to)) return;
    const list = this.arrivals.get(to) ?? [];
    list.push({ from, stack });
    this.arrivals.set(to, list);
  }

  /** A join pops the innermost split; returns the stack after it. */
  private enterJoin(step: StepNode, arrivals: readonly Arrival[]): SplitStack {
    const first = arrivals[0]?.stack ?? [];
    if (arrivals.every((a) => a.stack.length === 0)) {
      this.add(
        step,
        step.line,
        `Step '${step.name}' takes inputs, but no branch or foreach comes before it, so it is not a join.`,
        `Remove the parameter from '${step.name}' (write \`${step.name}()\`), or make '${step.name}' the step where the branches of a split meet.`,
      );
      return [];
    }
    if (!sameSplitBelowTop(arrivals)) {
      this.reportMixedSplits(step, arrivals);
      return first.slice(0, -1);
    }

    const top = first.at(-1);
    if (top && !this.reported.has(top.split)) {
      const arrived = new Set(arrivals.map((a) => a.stack.at(-1)?.branch));
      const required = (this.ctx.steps.get(top.split)?.out ?? []).filter((b) =>
        this.ctx.steps.has(b),
      );
      const missing = required.filter((b) => !arrived.has(b));
      if (missing.length > 0) {
        this.reported.add(top.split);
        this.add(
          step,
          step.line,
          `Join step '${step.name}' closes the split at '${top.split}', but the branch through ${quoteList(missing)} never arrives here.`,
          `Send every branch of '${top.split}' (${required.join(", ")}) to '${step.name}', directly or through ordinary steps.`,
        );
      }
    }
    return first.slice(0, -1);
  }

  /** An ordinary step must be entered by paths with the same open splits. */
  private enterStep(step: StepNode, arrivals: readonly Arrival[]): SplitStack {
    const first = arrivals[0]?.stack ?? [];
    if (arrivals.every((a) => sameStack(a.stack, first))) return first;

    const top = first.at(-1);
    if (top && sameSplitBelowTop(arrivals)) {
      // The branches of one split meet here: this step is a join that forgot its parameter.
      this.reported.add(top.split);
      this.add(
        step,
        step.line,
        `The branches of the split at '${top.split}' meet in step '${step.name}', but '${step.name}' takes no inputs, so it is not a join.`,
        `Add an \`inputs: Inputs<${this.ctx.graph.className}>\` parameter: @step ${step.name}(inputs: Inputs<${this.ctx.graph.className}>) { ... }.`,
      );
      return first.slice(0, -1);
    }
    this.reportMixedSplits(step, arrivals);
    return first;
  }

  private reportMixedSplits(step: StepNode, arrivals: readonly Arrival[]): void {
    const deepest = arrivals.reduce((a, b) => (b.stack.length > a.stack.length ? b : a));
    const inner = deepest.stack.at(-1);
    const involved = new Set(arrivals.flatMap((a) => a.stack.map((open) => open.split)));
    // A split already reported explains the mismatch; saying it again here would be noise.
    if ([...involved].every((split) => this.reported.has(split))) return;
    for (const split of involved) this.reported.add(split);
    const described = arrivals.map((a) => `from '${a.from}' ${describeStack(a.stack)}`).join("; ");
    this.add(
      step,
      step.line,
      `Step '${step.name}' is reached from paths with different open splits (${described}); a join can only close the innermost split.`,
      inner
        ? `Join the innermost split first: add a join step where the branches of '${inner.split}' meet, and send that join on to '${step.name}'.`
        : `Make every path into '${step.name}' pass through the same splits and joins.`,
    );
  }

  private reportUnclosed(stack: SplitStack): void {
    for (const open of [...stack].reverse()) {
      if (this.reported.has(open.split)) continue;
      this.reported.add(open.split);
      const split = this.ctx.steps.get(open.split);
      if (!split) continue;
      const what =
        split.next.kind === "foreach"
          ? `foreach over '${split.next.foreach}'`
          : `branch into ${split.out.join(", ")}`;
      this.add(
        split,
        split.nextLine,
        `The ${what} started at step '${split.name}' never meets in a join step: its paths reach 'end' with the split still open.`,
        `Add a join step that takes inputs, e.g. @step join(inputs: Inputs<${this.ctx.graph.className}>) { this.next(this.end); }, and send every branch of '${split.name}' to it.`,
      );
    }
  }

  private add(step: StepNode, line: number, message: string, fix: string): void {
    this.problems.push(this.ctx.problem(step.name, line, message, fix));
  }
}

function sameStack(a: SplitStack, b: SplitStack): boolean {
  return (
    a.length === b.length &&
    a.every((open, i) => open.split === b[i]?.split && open.branch === b[i]?.branch)
  );
}

/** True when all arrivals carry the same stack except, possibly, the branch of the top split. */
function sameSplitBelowTop(arrivals: readonly Arrival[]): boolean {
  const first = arrivals[0]?.stack ?? [];
  return arrivals.every(
    (a) =>
      a.stack.length === first.length &&
      sameStack(a.stack.slice(0, -1), first.slice(0, -1)) &&
      a.stack.at(-1)?.split === first.at(-1)?.split,
  );
}

function describeStack(stack: SplitStack): string {
  if (stack.length === 0) return "(no open split)";
  return `(inside ${stack.map((o) => `the split at '${o.split}'`).join(" > ")})`;
}

// ---------------------------------------------------------------------------------------------
// Graph helpers

/** Known targets of a step, without the self-loop of a switch, which is how a step repeats itself. */
function loopFreeTargets(ctx: LintContext, step: StepNode): string[] {
  return step.out.filter(
    (t) => ctx.steps.has(t) && !(t === step.name && step.next.kind === "switch"),
  );
}

function reachableFromStart(ctx: LintContext): Set<string> {
  const reached = new Set<string>(["start"]);
  const queue = ["start"];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    for (const target of ctx.steps.get(name)?.out ?? []) {
      if (ctx.steps.has(target) && !reached.has(target)) {
        reached.add(target);
        queue.push(target);
      }
    }
  }
  return reached;
}

/** Steps reachable from start, each after all its predecessors; undefined if they form a cycle. */
function topologicalOrder(ctx: LintContext): string[] | undefined {
  const reached = reachableFromStart(ctx);
  const indegree = new Map<string, number>([...reached].map((n) => [n, 0]));
  for (const name of reached) {
    const step = ctx.steps.get(name);
    for (const target of step ? loopFreeTargets(ctx, step) : [])
      indegree.set(target, (indegree.get(target) ?? 0) + 1);
  }
  const ready = [...reached].filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  for (let name = ready.shift(); name !== undefined; name = ready.shift()) {
    order.push(name);
    const step = ctx.steps.get(name);
    for (const target of step ? loopFreeTargets(ctx, step) : []) {
      const left = (indegree.get(target) ?? 0) - 1;
      indegree.set(target, left);
      if (left === 0) ready.push(target);
    }
  }
  return order.length === reached.size ? order : undefined;
}
