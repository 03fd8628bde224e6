import { test } from "node:test";
import assert from "node:assert/strict";
import { GraphError, type GraphProblem } from "../errors.js";
import { assertValidGraph } from "./index.js";
import { lintGraph, lintRules } from "./lint.js";
import { buildGraph } from "./parse.js";

/** Wraps step methods in a minimal flow class named BadFlow. */
function flow(body: string): string {
  return `import { FlowSpec, step, type Inputs } from "metaflow-ts";
export default class BadFlow extends FlowSpec {
${body}
}
`;
}

function lint(body: string): { source: string; problems: GraphProblem[] } {
  const source = flow(body);
  return { source, problems: lintGraph(buildGraph("flows/bad.ts", source)) };
}

/** 1-based line of the first line of `source` containing `marker`. */
function lineOf(source: string, marker: string): number {
  const index = source.split("\n").findIndex((l) => l.includes(marker));
  assert.notEqual(index, -1, `marker ${marker} not in source`);
  return index + 1;
}

/** Asserts exactly one problem and returns it. */
function onlyProblem(body: string): { source: string; problem: GraphProblem } {
  const { source, problems } = lint(body);
  assert.equal(
    problems.length,
    1,
    `expected one problem, got ${JSON.stringify(problems, null, 2)}`,
  );
  return { source, problem: problems[0]! };
}

function assertValid(body: string): void {
  const { problems } = lint(body);
  assert.deepEqual(problems, [], JSON.stringify(problems, null, 2));
}

// ---------------------------------------------------------------------------------------------
// Valid shapes

void test("the rules are small named functions", () => {
  assert.deepEqual(
    lintRules.map((r) => r.name),
    ["has-start", "has-end", "known-targets", "reachable", "acyclic", "splits-and-joins", "names"],
  );
});

void test("valid: linear", () => {
  assertValid(`
  @step start() { this.next(this.a); }
  @step async a() { await Promise.resolve(); this.next(this.end); }
  @step end() {}`);
});

void test("valid: start going straight to end", () => {
  assertValid(`
  @step start() { this.next(this.end); }
  @step end() {}`);
});

void test("valid: static branch and join", () => {
  assertValid(`
  @step start() { this.next(this.a, this.b, this.c); }
  @step a() { this.next(this.join); }
  @step b() { this.next(this.b2); }
  @step b2() { this.next(this.join); }
  @step c() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: foreach and join, the join going straight to end", () => {
  assertValid(`
  @step start() { this.next(this.train, { foreach: "models" }); }
  @step async train() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: the end step itself may be the join", () => {
  assertValid(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.end); }
  @step b() { this.next(this.end); }
  @step end(inputs: Inputs<BadFlow>) {}`);
});

void test("valid: nested foreach", () => {
  assertValid(`
  @step start() { this.next(this.outer, { foreach: "xs" }); }
  @step outer() { this.next(this.inner, { foreach: "ys" }); }
  @step inner() { this.next(this.joinInner); }
  @step joinInner(inputs: Inputs<BadFlow>) { this.next(this.joinOuter); }
  @step joinOuter(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: branch inside a foreach", () => {
  assertValid(`
  @step start() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.a, this.b); }
  @step a() { this.next(this.joinBranch); }
  @step b() { this.next(this.joinBranch); }
  @step joinBranch(inputs: Inputs<BadFlow>) { this.next(this.joinEach); }
  @step joinEach(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: foreach inside a branch", () => {
  assertValid(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.joinEach); }
  @step joinEach(inputs: Inputs<BadFlow>) { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: a join that directly opens another split", () => {
  assertValid(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.join2); }
  @step join2(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: switch branches converge at an ordinary step", () => {
  assertValid(`
  @step start() { this.next({ high: this.high, low: this.low }, { condition: "level" }); }
  @step high() { this.next(this.merge); }
  @step low() { this.next(this.merge); }
  @step merge() { this.next(this.end); }
  @step end() {}`);
});

void test("valid: switch recursion (a case naming the step itself)", () => {
  assertValid(`
  @step start() { this.next(this.poll); }
  @step poll() { this.next({ again: this.poll, done: this.end }, { condition: "state" }); }
  @step end() {}`);
});

void test("valid: switch inside a foreach whose cases reach the join", () => {
  assertValid(`
  @step start() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next({ big: this.big, small: this.join }, { condition: "size" }); }
  @step big() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
});

void test("valid: the example TrainFlow", () => {
  const source = `import { FlowSpec, step, Parameter, type Inputs } from "metaflow-ts";
/** Trains models. */
export default class TrainFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 0.01 });
  declare models: string[];
  /** Pick models. */
  @step start() { this.models = ["a", "b"]; this.next(this.train, { foreach: "models" }); }
  @retry({ times: 2 }) @step async train() { this.next(this.join); }
  @step join(inputs: Inputs<TrainFlow>) { this.next(this.end); }
  @step end() {}
}`;
  const graph = buildGraph("train.ts", source);
  assert.deepEqual(lintGraph(graph), []);
  assert.doesNotThrow(() => assertValidGraph(graph));
});

// ---------------------------------------------------------------------------------------------
// Invalid shapes

void test("no start step", () => {
  const { source, problem } = onlyProblem(`
  @step begin() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "start");
  assert.equal(problem.file, "flows/bad.ts");
  assert.equal(problem.line, lineOf(source, "class BadFlow"));
  assert.match(problem.message, /BadFlow has no start step/);
  assert.match(problem.fix, /@step start\(\)/);
});

void test("no end step is reported at the class line", () => {
  const { source, problems } = lint(`
  @step start() { this.next(this.a); }
  @step a() { this.next(this.start2); }
  @step start2() { this.next(this.a2); }
  @step a2() { this.next(this.done); }
  @step done() {}`);
  const noEnd = problems.find((p) => /no end step/.test(p.message));
  assert.ok(noEnd);
  assert.equal(noEnd.step, "end");
  assert.equal(noEnd.line, lineOf(source, "class BadFlow"));
  assert.match(noEnd.fix, /@step end\(\) \{\}/);
  // 'done' forgot this.next: that is reported too, as a source problem.
  assert.ok(problems.some((p) => p.step === "done" && /does not call this\.next/.test(p.message)));
});

void test("unknown step: names the existing steps and suggests the closest", () => {
  const { source, problems } = lint(`
  @step start() {
    this.next(this.trian);
  }
  @step train() { this.next(this.end); }
  @step end() {}`);
  const unknown = problems.find((p) => /not a step of this flow/.test(p.message));
  assert.ok(unknown, JSON.stringify(problems));
  assert.equal(unknown.step, "start");
  assert.equal(unknown.line, lineOf(source, "this.next(this.trian)"));
  assert.match(unknown.message, /Step 'start' goes to 'trian'.*its steps are: start, train, end/);
  assert.match(unknown.fix, /Did you mean this\.train\?/);
  // train is then unreachable, reported separately.
  assert.ok(problems.some((p) => p.step === "train" && /cannot be reached/.test(p.message)));
});

void test("unknown step without a close name lists the steps only", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next({ a: this.end, b: this.somethingElse }, { condition: "c" }); }
  @step end() {}`);
  assert.match(problem.message, /goes to 'somethingElse'/);
  assert.doesNotMatch(problem.fix, /Did you mean/);
  assert.match(problem.fix, /add a @step method named 'somethingElse'/);
});

void test("a step unreachable from start", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.end); }
  @step orphan() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "orphan");
  assert.equal(problem.line, lineOf(source, "orphan()"));
  assert.match(problem.message, /Step 'orphan' cannot be reached from start/);
  assert.match(problem.fix, /this\.next\(this\.orphan\)/);
});

void test("a cycle through linear steps", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.a); }
  @step a() { this.next(this.b); }
  @step b() {
    this.next({ back: this.a, done: this.end }, { condition: "c" });
  }
  @step end() {}`);
  assert.equal(problem.step, "b");
  assert.equal(problem.line, lineOf(source, "back: this.a"));
  assert.match(problem.message, /Step 'b' goes back to 'a', which makes a cycle: a → b → a/);
  assert.match(problem.fix, /switch that names itself/);
});

void test("a step going to itself without a switch is a cycle", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(this.a); }
  @step a() { this.next(this.a, this.end); }
  @step end(inputs: Inputs<BadFlow>) {}`);
  assert.equal(problem.step, "a");
  assert.match(problem.message, /cycle: a → a/);
});

void test("a static branch that never meets in a join", () => {
  const { source, problem } = onlyProblem(`
  @step start() {
    this.next(this.a, this.b);
  }
  @step a() { this.next(this.end); }
  @step b() { this.next(this.end); }
  @step end() {}`);
  // The branches meet at end, which takes no inputs.
  assert.equal(problem.step, "end");
  assert.equal(problem.line, lineOf(source, "end()"));
  assert.match(
    problem.message,
    /branches of the split at 'start' meet in step 'end'.*takes no inputs/,
  );
  assert.match(problem.fix, /Add an `inputs: Inputs<BadFlow>` parameter/);
});

void test("a foreach whose paths reach end through a non-join", () => {
  const { source, problem } = onlyProblem(`
  @step start() {
    this.next(this.each, { foreach: "xs" });
  }
  @step each() { this.next(this.after); }
  @step after() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "start");
  assert.equal(problem.line, lineOf(source, 'foreach: "xs"'));
  assert.match(
    problem.message,
    /foreach over 'xs' started at step 'start' never meets in a join step/,
  );
  assert.match(problem.fix, /@step join\(inputs: Inputs<BadFlow>\)/);
});

void test("nested foreach with one join leaves the outer foreach open", () => {
  const { problems } = lint(`
  @step start() { this.next(this.outer, { foreach: "xs" }); }
  @step outer() { this.next(this.inner, { foreach: "ys" }); }
  @step inner() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  // The join closes the innermost foreach (over ys), so the outer one reaches end still open.
  assert.equal(problems[0]!.step, "start");
  assert.match(problems[0]!.message, /foreach over 'xs' started at step 'start'/);
});

void test("a join of a branch that one branch never reaches", () => {
  const { source, problems } = lint(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.joinA); }
  @step b() { this.next(this.joinB); }
  @step joinA(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step joinB(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  const problem = problems[0]!;
  assert.equal(problem.step, "joinA");
  assert.equal(problem.line, lineOf(source, "joinA(inputs"));
  assert.match(
    problem.message,
    /Join step 'joinA' closes the split at 'start', but the branch through 'b' never arrives here/,
  );
  assert.match(problem.fix, /Send every branch of 'start' \(a, b\) to 'joinA'/);
});

void test("branches of two different splits joined in one step", () => {
  const { source, problems } = lint(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.c, this.d); }
  @step c() { this.next(this.join); }
  @step d() { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  const problem = problems[0]!;
  assert.equal(problem.step, "join");
  assert.equal(problem.line, lineOf(source, "join(inputs"));
  assert.match(problem.message, /Step 'join' is reached from paths with different open splits/);
  assert.match(problem.message, /from 'c' \(inside the split at 'start' > the split at 'a'\)/);
  assert.match(problem.message, /from 'b' \(inside the split at 'start'\)/);
  assert.match(problem.fix, /add a join step where the branches of 'a' meet/);
});

void test("a join reached both from inside a foreach and from outside it", () => {
  const { problems } = lint(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  assert.equal(problems[0]!.step, "join");
  assert.match(problems[0]!.message, /different open splits/);
  assert.match(problems[0]!.fix, /branches of 'a'/);
});

void test("branches inside a foreach meeting in a non-join leave the foreach open too", () => {
  const { source, problems } = lint(`
  @step start() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.a, this.b); }
  @step a() { this.next(this.collect); }
  @step b() { this.next(this.collect); }
  @step collect() { this.next(this.end); }
  @step end() {}`);
  assert.deepEqual(
    problems.map((p) => [p.step, p.line]),
    [
      ["start", lineOf(source, "start()")],
      ["collect", lineOf(source, "collect()")],
    ],
  );
  assert.match(problems[0]!.message, /foreach over 'xs' started at step 'start' never meets/);
  assert.match(problems[1]!.message, /branches of the split at 'each' meet in step 'collect'/);
});

void test("a branch partly joined, the other path going to end, is reported once", () => {
  const { problems } = lint(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step b() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  assert.equal(problems[0]!.step, "join");
  assert.match(problems[0]!.message, /the branch through 'b' never arrives here/);
});

void test("branches meeting in a step that declares no inputs", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.merge); }
  @step b() { this.next(this.merge); }
  @step merge() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "merge");
  assert.equal(problem.line, lineOf(source, "merge() {"));
  assert.match(
    problem.message,
    /branches of the split at 'start' meet in step 'merge', but 'merge' takes no inputs/,
  );
  assert.match(problem.fix, /Add an `inputs: Inputs<BadFlow>` parameter/);
});

void test("a join without inputs: a step with an inputs parameter that no split reaches", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.a); }
  @step a(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "a");
  assert.equal(problem.line, lineOf(source, "a(inputs"));
  assert.match(problem.message, /Step 'a' takes inputs, but no branch or foreach comes before it/);
  assert.match(problem.fix, /Remove the parameter from 'a'/);
});

void test("switch branches meeting at a step with inputs is a join without a split", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next({ x: this.x, y: this.y }, { condition: "c" }); }
  @step x() { this.next(this.merge); }
  @step y() { this.next(this.merge); }
  @step merge(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "merge");
  assert.match(problem.fix, /Remove the parameter/);
});

void test("a join after the join already closed the split has no split to close", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(this.each, { foreach: "xs" }); }
  @step each() { this.next(this.join); }
  @step join(inputs: Inputs<BadFlow>) { this.next(this.again); }
  @step again(inputs: Inputs<BadFlow>) { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, "again");
  assert.match(problem.message, /takes inputs, but no branch or foreach comes before it/);
});

void test("source problems and lint problems are merged in line order", () => {
  const { source, problems } = lint(`
  @step start() { this.next(this.a); }
  @step orphan() { this.next(this.end); }
  @step a() { this.next(this.end, { forEach: "x" }); }
  @step end() {}`);
  assert.deepEqual(
    problems.map((p) => [p.step, p.line]),
    [
      ["orphan", lineOf(source, "orphan()")],
      ["a", lineOf(source, "forEach")],
    ],
  );
  assert.match(problems[0]!.message, /cannot be reached/);
  assert.match(problems[1]!.message, /unknown this\.next option/);
});

void test("a missing end is reported once, not again at each step going to it", () => {
  const { problems } = lint(`
  @step start() { this.next(this.a, this.b); }
  @step a() { this.next(this.end); }
  @step b() { this.next(this.end); }`);
  assert.deepEqual(
    problems.map((p) => p.step),
    ["end"],
  );
});

void test("every problem names a step, a file and a fix", () => {
  const { problems } = lint(`
  @step begin() { this.next(this.x, this.y); }
  @step x() { this.next(this.nowhere); }
  @step y(inputs: Inputs<BadFlow>) {}`);
  assert.ok(problems.length >= 4);
  for (const p of problems) {
    assert.ok(p.step, JSON.stringify(p));
    assert.match(p.message, new RegExp(`'${p.step}'|${p.step} step`));
    assert.equal(p.file, "flows/bad.ts");
    assert.ok(p.line >= 1);
    assert.ok(p.fix.length > 10);
  }
});

void test("assertValidGraph throws a GraphError listing the problems", () => {
  const graph = buildGraph("flows/bad.ts", flow(`@step start() { this.next(this.end); }`));
  assert.throws(
    () => assertValidGraph(graph),
    (err: unknown) =>
      err instanceof GraphError &&
      err.problems.length === 1 &&
      /flows\/bad\.ts:2: step 'end':/.test(err.message),
  );
});

// ---------------------------------------------------------------------------------------------
// Names every setup accepts (local files, pathspecs, the metadata service): one rule for all

void test("names: a step name over 128 characters is refused, naming the limit", () => {
  const long = `s${"x".repeat(128)}`;
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.${long}); }
  @step ${long}() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.step, long);
  assert.equal(problem.line, lineOf(source, `@step ${long}()`));
  assert.match(problem.message, /129 characters.*at most 128/);
});

void test("names: a step name with '$' or non-ASCII letters is refused", () => {
  for (const name of ["$load", "läden"]) {
    const { problem } = onlyProblem(`
  @step start() { this.next(this.${name}); }
  @step ${name}() { this.next(this.end); }
  @step end() {}`);
    assert.equal(problem.step, name);
    assert.match(problem.message, /ASCII letters, digits and '_'/);
  }
});

void test("names: a non-ASCII flow class name is refused at the class line", () => {
  const source = `import { FlowSpec, step } from "metaflow-ts";
export default class FlöwFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}
`;
  const problems = lintGraph(buildGraph("flows/bad.ts", source));
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.line, 2);
  assert.match(problems[0]!.message, /flow class name 'FlöwFlow'/);
});

void test("names: an artifact name over 1,024 characters is refused where it is assigned", () => {
  const long = `a${"b".repeat(1024)}`;
  const quoted = "c".repeat(1100);
  const { source, problems } = lint(`
  @step start() {
    this.ok = 1;
    this.${long} = 2;
    this.next(this.end);
  }
  @step end() { this["${quoted}"] += 1; this["fine"] = 0; }`);
  assert.deepEqual(
    problems.map((p) => [p.step, p.line]),
    [
      ["start", lineOf(source, `this.${long} = 2`)],
      ["end", lineOf(source, quoted)],
    ],
  );
  assert.match(problems[0]!.message, /artifact 'abbbbbbbbb.*', whose name is 1025 characters long.*at most 1024/);
});
