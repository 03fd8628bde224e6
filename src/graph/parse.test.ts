import { test } from "node:test";
import assert from "node:assert/strict";
import { FlowLoadError, type GraphProblem } from "../errors.js";
import { buildGraph } from "./parse.js";
import type { FlowGraph, StepNode } from "./types.js";

/** 1-based line of the first line of `source` containing `marker`. */
function lineOf(source: string, marker: string): number {
  const index = source.split("\n").findIndex((l) => l.includes(marker));
  assert.notEqual(index, -1, `marker ${marker} not in source`);
  return index + 1;
}

function stepOf(graph: FlowGraph, name: string): StepNode {
  const step = graph.steps.find((s) => s.name === name);
  assert.ok(step, `no step ${name}`);
  return step;
}

/** Wraps step methods in a minimal flow class. */
function flow(body: string): string {
  return `import { FlowSpec, step, type Inputs } from "metaflow-ts";
export default class TestFlow extends FlowSpec {
${body}
}
`;
}

function problemsOf(body: string): { source: string; problems: readonly GraphProblem[] } {
  const source = flow(body);
  return { source, problems: buildGraph("flow.ts", source).sourceProblems };
}

/** Asserts exactly one source problem and returns it. */
function onlyProblem(body: string): { source: string; problem: GraphProblem } {
  const { source, problems } = problemsOf(body);
  assert.equal(
    problems.length,
    1,
    `expected one problem, got ${JSON.stringify(problems, null, 2)}`,
  );
  return { source, problem: problems[0]! };
}

const TRAIN_FLOW = `import { FlowSpec, step, Parameter, type Inputs } from "metaflow-ts";
/** Trains models. */
export default class TrainFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 0.01 });
  declare models: string[];
  /** Pick models. */
  @step start() { this.models = ["a", "b"]; this.next(this.train, { foreach: "models" }); }
  @retry({ times: 2 }) @step async train() { this.next(this.join); }
  @step join(inputs: Inputs<TrainFlow>) { this.next(this.end); }
  @step end() {}
}
`;

void test("reads the example foreach flow", () => {
  const graph = buildGraph("flows/train.ts", TRAIN_FLOW);
  assert.equal(graph.className, "TrainFlow");
  assert.equal(graph.file, "flows/train.ts");
  assert.equal(graph.classLine, 3);
  assert.equal(graph.doc, "Trains models.");
  assert.deepEqual(graph.sourceProblems, []);
  assert.deepEqual(
    graph.steps.map((s) => s.name),
    ["start", "train", "join", "end"],
  );

  const start = stepOf(graph, "start");
  assert.deepEqual(start.next, { kind: "foreach", to: "train", foreach: "models" });
  assert.equal(start.kind, "foreach");
  assert.equal(start.doc, "Pick models.");
  assert.equal(start.line, 7);
  assert.equal(start.nextLine, 7);
  assert.equal(start.isAsync, false);
  assert.equal(start.isJoin, false);
  assert.deepEqual(start.out, ["train"]);
  assert.deepEqual(start.in, []);
  assert.deepEqual(start.decorators, []);

  const train = stepOf(graph, "train");
  assert.equal(train.isAsync, true);
  assert.deepEqual(train.decorators, ["retry"]);
  assert.equal(train.kind, "linear");
  assert.equal(train.doc, "");
  assert.deepEqual(train.in, ["start"]);

  const join = stepOf(graph, "join");
  assert.equal(join.isJoin, true);
  assert.equal(join.kind, "join");
  assert.deepEqual(join.next, { kind: "linear", to: "end" });

  const end = stepOf(graph, "end");
  assert.equal(end.kind, "end");
  assert.deepEqual(end.next, { kind: "end" });
  assert.deepEqual(end.out, []);
  assert.deepEqual(end.in, ["join"]);
  assert.equal(end.nextLine, end.line);
});

void test("reads a static branch and its join", () => {
  const source = flow(`
  @step start() {
    this.next(this.a, this.b);
  }
  @step a() { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<TestFlow>) { this.next(this.end); }
  @step end() {}`);
  const graph = buildGraph("flow.ts", source);
  const start = stepOf(graph, "start");
  assert.deepEqual(start.next, { kind: "branch", to: ["a", "b"] });
  assert.equal(start.kind, "branch");
  assert.deepEqual(start.out, ["a", "b"]);
  assert.equal(start.line, lineOf(source, "start()"));
  assert.equal(start.nextLine, lineOf(source, "this.next(this.a, this.b)"));
  assert.deepEqual(stepOf(graph, "join").in, ["a", "b"]);
  assert.deepEqual(graph.sourceProblems, []);
});

void test("reads a switch with identifier and string keys, including recursion", () => {
  const source = flow(`
  @step start() { this.next(this.poll); }
  @step poll() {
    this.next({ again: this.poll, "all done": this.end }, { condition: "state" });
  }
  @step end() {}`);
  const graph = buildGraph("flow.ts", source);
  const poll = stepOf(graph, "poll");
  assert.deepEqual(poll.next, {
    kind: "switch",
    cases: { again: "poll", "all done": "end" },
    condition: "state",
  });
  assert.equal(poll.kind, "switch");
  assert.deepEqual(poll.out, ["poll", "end"]);
  assert.deepEqual(poll.in, ["start", "poll"]);
  assert.deepEqual(graph.sourceProblems, []);
});

void test("a switch whose cases share a target lists the target once in out", () => {
  const graph = buildGraph(
    "flow.ts",
    flow(`
  @step start() { this.next({ a: this.end, b: this.end }, { condition: "c" }); }
  @step end() {}`),
  );
  assert.deepEqual(stepOf(graph, "start").out, ["end"]);
  assert.deepEqual(stepOf(graph, "end").in, ["start"]);
});

void test("accepts template literals without substitutions and `return this.next(...)`", () => {
  const graph = buildGraph(
    "flow.ts",
    flow(`
  @step start() { return this.next(this.end, { foreach: \`items\` }); }
  @step end() {}`),
  );
  assert.deepEqual(graph.sourceProblems, []);
  assert.deepEqual(stepOf(graph, "start").next, { kind: "foreach", to: "end", foreach: "items" });
});

void test("recognises `@x.step` and collects the names of other decorators", () => {
  const graph = buildGraph(
    "flow.ts",
    `import * as mf from "metaflow-ts";
export default class F extends mf.FlowSpec {
  @mf.retry({ times: 2 }) @timeout({ seconds: 5 }) @mf.step start() { this.next(this.end); }
  @catchError @mf.step end() {}
  helper() { this.next(this.end); }
  @other notAStep() {}
}`,
  );
  assert.deepEqual(
    graph.steps.map((s) => s.name),
    ["start", "end"],
  );
  assert.deepEqual(stepOf(graph, "start").decorators, ["retry", "timeout"]);
  assert.deepEqual(stepOf(graph, "end").decorators, ["catchError"]);
});

void test("the step line is the line of the method name, even under multi-line decorators", () => {
  const source = flow(`
  @retry({
    times: 2,
  })
  @step
  start() {
    const x = 1;
    this.next(
      this.end,
    );
  }
  @step end() {}`);
  const start = stepOf(buildGraph("flow.ts", source), "start");
  assert.equal(start.line, lineOf(source, "start() {"));
  assert.equal(start.nextLine, lineOf(source, "this.next("));
});

void test("reads docs from JSDoc blocks and runs of line comments right above the step", () => {
  const source = `import { FlowSpec, step } from "metaflow-ts";
/* Copyright header, not a doc. */

// A flow documented with
// line comments.
export class DocFlow extends FlowSpec {
  x = 1; // trailing comment of x, not a doc
  /**
   * Starts things.
   *
   *   Indented detail.
   */
  @step start() { this.next(this.a); }
  // Not part of the doc (blank line below).

  // Step a, first line.
  // Step a, second line.
  @retry
  @step a() { this.next(this.b); }
  /* A plain block comment is not a doc. */
  @step b() { this.next(this.c); }
  /** Separated JSDoc still documents c. */

  @step c() { this.next(this.end); }
  @step end() {}
}`;
  const graph = buildGraph("flow.ts", source);
  assert.equal(graph.doc, "A flow documented with\nline comments.");
  assert.equal(stepOf(graph, "start").doc, "Starts things.\n\n  Indented detail.");
  assert.equal(stepOf(graph, "a").doc, "Step a, first line.\nStep a, second line.");
  assert.equal(stepOf(graph, "b").doc, "");
  assert.equal(stepOf(graph, "c").doc, "Separated JSDoc still documents c.");
  assert.equal(stepOf(graph, "end").doc, "");
});

void test("a trailing comment on the previous line is not a doc", () => {
  const graph = buildGraph(
    "flow.ts",
    flow(`
  @step start() { this.next(this.end); } // about start
  @step end() {}`),
  );
  assert.equal(stepOf(graph, "end").doc, "");
});

// ---------------------------------------------------------------------------------------------
// Finding the flow class

void test("prefers the default-exported class over other exported subclasses", () => {
  const graph = buildGraph(
    "flow.ts",
    `export class Base extends FlowSpec {}
export default class Main extends Base { @step start() { this.next(this.end); } @step end() {} }`,
  );
  assert.equal(graph.className, "Main");
  assert.equal(graph.classLine, 2);
});

void test("uses the only exported subclass when there is no default export", () => {
  const graph = buildGraph(
    "flow.ts",
    `class Helper {}
export class Util {}
export class OnlyFlow extends FlowSpec { @step start() { this.next(this.end); } @step end() {} }`,
  );
  assert.equal(graph.className, "OnlyFlow");
});

void test("follows `export default Name` and `export { Name }`", () => {
  const byDefault = buildGraph(
    "flow.ts",
    `class A extends FlowSpec {}\nclass B extends FlowSpec {}\nexport default B;`,
  );
  assert.equal(byDefault.className, "B");
  const bySpecifier = buildGraph(
    "flow.ts",
    `class A extends FlowSpec {}\nclass B extends FlowSpec {}\nexport { A };`,
  );
  assert.equal(bySpecifier.className, "A");
  const asDefault = buildGraph(
    "flow.ts",
    `class A extends FlowSpec {}\nclass B extends FlowSpec {}\nexport { A, B as default };`,
  );
  assert.equal(asDefault.className, "B");
});

void test("an anonymous default class is named after the file", () => {
  const graph = buildGraph("flows/my_flow.ts", `export default class extends FlowSpec {}`);
  assert.equal(graph.className, "my_flow");
});

void test("className picks a class, exported or not", () => {
  const source = `class Hidden extends FlowSpec { @step start() { this.next(this.end); } @step end() {} }
export default class Shown extends FlowSpec {}`;
  assert.equal(buildGraph("flow.ts", source, { className: "Hidden" }).className, "Hidden");
  assert.throws(
    () => buildGraph("flow.ts", source, { className: "Missing" }),
    (err: unknown) =>
      err instanceof FlowLoadError &&
      /no class named 'Missing'/.test(err.message) &&
      /Hidden, Shown/.test(err.message),
  );
});

void test("a file exporting no FlowSpec subclass is a FlowLoadError that says how to fix it", () => {
  for (const source of [
    `export class NotAFlow {}`,
    `class Hidden extends FlowSpec {}`,
    `export const x = 1;`,
  ]) {
    assert.throws(
      () => buildGraph("flows/none.ts", source),
      (err: unknown) =>
        err instanceof FlowLoadError &&
        err.file === "flows/none.ts" &&
        /exports no FlowSpec subclass/.test(err.message) &&
        /export default class MyFlow extends FlowSpec/.test(err.message),
    );
  }
});

void test("several exported subclasses and no default export is ambiguous", () => {
  assert.throws(
    () =>
      buildGraph(
        "flow.ts",
        `export class A extends FlowSpec {}\nexport class B extends FlowSpec {}`,
      ),
    (err: unknown) =>
      err instanceof FlowLoadError &&
      /\(A, B\)/.test(err.message) &&
      /export default/.test(err.message),
  );
});

void test("a syntax error is a FlowLoadError with the file and line", () => {
  assert.throws(
    () =>
      buildGraph(
        "flows/broken.ts",
        `export default class F extends FlowSpec {\n  @step start() { this.next(this.end; }\n}`,
      ),
    (err: unknown) =>
      err instanceof FlowLoadError &&
      /^flows\/broken\.ts:2:\d+: the flow file does not parse: [^(]+$/.test(err.message),
  );
});

void test("parses plain JavaScript flows with decorators, without TypeScript syntax", () => {
  const js = `import { FlowSpec, step } from "metaflow-ts";
export default class JsFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}`;
  for (const file of ["flow.js", "flow.mjs"]) {
    const graph = buildGraph(file, js);
    assert.equal(graph.className, "JsFlow");
    assert.deepEqual(stepOf(graph, "start").next, { kind: "linear", to: "end" });
  }
  // Type annotations are TypeScript, so a .js file containing them does not parse.
  assert.throws(() => buildGraph("flow.js", js.replace("start()", "start(): void")), FlowLoadError);
});

// ---------------------------------------------------------------------------------------------
// Source problems

void test("no problems for a well-formed flow", () => {
  assert.deepEqual(buildGraph("flow.ts", TRAIN_FLOW).sourceProblems, []);
});

void test("a string target is reported with a fix naming this.<step>", () => {
  const { source, problem } = onlyProblem(`
  @step start() {
    this.next("end");
  }
  @step end() {}`);
  assert.equal(problem.step, "start");
  assert.equal(problem.file, "flow.ts");
  assert.equal(problem.line, lineOf(source, `this.next("end")`));
  assert.match(problem.message, /Step 'start' passes `"end"` to this\.next/);
  assert.match(problem.fix, /this\.end/);
});

void test("a bare identifier or a called step is not a step reference", () => {
  const bare = onlyProblem(`
  @step start() { this.next(end); }
  @step end() {}`).problem;
  assert.match(bare.message, /passes `end` to this\.next/);
  assert.match(bare.fix, /through this: this\.end/);

  const called = onlyProblem(`
  @step start() { this.next(this.end()); }
  @step end() {}`).problem;
  assert.match(called.message, /passes `this\.end\(\)`/);
  assert.match(called.fix, /without calling it: this\.end/);
});

void test("this.next() without arguments is reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(); }
  @step end() {}`);
  assert.equal(problem.step, "start");
  assert.match(problem.message, /without a target step/);
});

void test("an unknown option key is reported", () => {
  const { source, problem } = onlyProblem(`
  @step start() {
    this.next(this.a, { forEach: "items" });
  }
  @step a() { this.next(this.end); }
  @step end() {}`);
  assert.equal(problem.line, lineOf(source, "forEach"));
  assert.match(problem.message, /unknown this\.next option `forEach: "items"`/);
  assert.match(problem.fix, /foreach and condition/);
});

void test("a non-string foreach or condition is reported", () => {
  const foreach = onlyProblem(`
  @step start() { const items = "xs"; this.next(this.end, { foreach: items }); }
  @step end() {}`).problem;
  assert.match(foreach.message, /sets foreach to `items`; it must be a string literal/);
  assert.match(foreach.fix, /\{ foreach: "items" \}/);

  const { problems } = problemsOf(`
  @step start() { this.next({ a: this.end }, { condition: 42 }); }
  @step end() {}`);
  assert.ok(problems.some((p) => /sets condition to `42`/.test(p.message)));
});

void test("foreach and condition together are reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(this.end, { foreach: "a", condition: "b" }); }
  @step end() {}`);
  assert.match(problem.message, /both foreach and condition/);
});

void test("a condition without a case object is reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(this.end, { condition: "level" }); }
  @step end() {}`);
  assert.match(problem.message, /condition but no case object/);
  assert.match(problem.fix, /condition: "level"/);
});

void test("a case object without a condition is reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next({ a: this.end }); }
  @step end() {}`);
  assert.match(problem.message, /case object to this\.next but no condition/);
});

void test("a switch case that is not a step reference is reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next({ a: this.end, b: "end" }, { condition: "c" }); }
  @step end() {}`);
  assert.match(problem.message, /maps switch case 'b' to `"end"`/);
  assert.match(problem.fix, /this\.end/);
});

void test("a foreach with two targets is reported", () => {
  const { problem } = onlyProblem(`
  @step start() { this.next(this.a, this.end, { foreach: "xs" }); }
  @step a() { this.next(this.end); }
  @step end() {}`);
  assert.match(problem.message, /foreach with 2 target steps/);
});

void test("this.next that is not the last statement is reported", () => {
  const { source, problem } = onlyProblem(`
  @step start() {
    this.next(this.end);
    console.log("after");
  }
  @step end() {}`);
  assert.equal(problem.step, "start");
  assert.equal(problem.line, lineOf(source, "this.next(this.end)"));
  assert.match(problem.message, /not the last statement/);
  assert.match(problem.fix, /Move the this\.next/);
  // The transition is still read so later checks see the intended graph.
  assert.deepEqual(stepOf(buildGraph("flow.ts", source), "start").next, {
    kind: "linear",
    to: "end",
  });
});

void test("this.next called twice in if/else is reported at the extra call", () => {
  const { source, problems } = problemsOf(`
  @step start() {
    if (Math.random() > 0.5) {
      this.next(this.a);
    } else {
      this.next(this.end);
    }
  }
  @step a() { this.next(this.end); }
  @step end() {}`);
  const twice = problems.find((p) => /more than once/.test(p.message));
  assert.ok(twice);
  assert.equal(twice.step, "start");
  assert.equal(twice.line, lineOf(source, "this.next(this.end);"));
  assert.match(twice.fix, /switch/);
  const notLast = problems.find((p) => /not the last statement/.test(p.message));
  assert.ok(notLast);
  assert.equal(notLast.line, lineOf(source, "this.next(this.a)"));
});

void test("this.next inside a loop or a callback besides the final call is reported", () => {
  for (const nested of [
    "for (const x of [1]) { this.next(this.end); }",
    "[1].forEach(() => this.next(this.end));",
  ]) {
    const { source, problem } = onlyProblem(`
  @step start() {
    ${nested}
    this.next(this.end);
  }
  @step end() {}`);
    assert.equal(problem.line, lineOf(source, nested));
    assert.match(problem.message, /Step 'start' calls this\.next more than once/);
  }
});

void test("a step other than end without this.next is reported", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.a); }
  @step a() {
    console.log("forgot");
  }
  @step end() {}`);
  assert.equal(problem.step, "a");
  assert.equal(problem.line, lineOf(source, "a() {"));
  assert.match(problem.message, /Step 'a' does not call this\.next/);
  assert.match(problem.fix, /this\.next\(this\.end\)/);
});

void test("end calling this.next is reported and end stays terminal", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.end); }
  @step end() {
    this.next(this.start);
  }`);
  assert.equal(problem.step, "end");
  assert.equal(problem.line, lineOf(source, "this.next(this.start)"));
  assert.match(problem.message, /end step calls this\.next/);
  assert.deepEqual(stepOf(buildGraph("flow.ts", source), "end").next, { kind: "end" });
});

void test("a step defined twice is reported", () => {
  const { source, problem } = onlyProblem(`
  @step start() { this.next(this.end); }
  @step end() {}
  @step start() { this.next(this.end); } // again`);
  assert.equal(problem.step, "start");
  assert.equal(problem.line, lineOf(source, "// again"));
  assert.match(problem.message, /defined twice/);
});
