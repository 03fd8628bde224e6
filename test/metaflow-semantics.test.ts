/**
 * What Metaflow's own graph suite expects (issue 14): mergeArtifacts sets all or nothing,
 * include and exclude are exclusive, a foreach runs over any finite iterable (strings split into
 * characters), and `this.foreachStack()` lists the enclosing foreach frames.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Project } from "./helpers/project.js";

const project = new Project();
after(() => project.cleanup());

const HEADER = `import { FlowSpec, step, type Inputs } from "metaflow-ts";\n`;

void test("a mergeArtifacts that throws has set nothing, not even the artifacts the inputs agree on", async () => {
  project.write(
    "merge.ts",
    `${HEADER}
export default class MergeFlow extends FlowSpec {
  declare passdown: string; declare differs: string; declare seen: string; declare message: string;
  @step start() { this.passdown = "a"; this.next(this.a, this.b); }
  @step a() { this.differs = "from a"; this.next(this.join); }
  @step b() { this.differs = "from b"; this.next(this.join); }
  @step join(inputs: Inputs<MergeFlow>) {
    try { this.mergeArtifacts(inputs); } catch (e) { this.message = (e as Error).message; }
    this.seen = typeof (this as Record<string, unknown>).passdown;
    this.mergeArtifacts(inputs, { exclude: ["differs"] });
    this.next(this.end);
  }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "merge.ts"]);
  assert.equal(r.code, 0, r.stderr);
  const runId = await project.latestRun("MergeFlow");
  assert.equal(await project.value("MergeFlow", runId, "join", "seen"), "undefined", "the failed merge left passdown unset");
  assert.match(String(await project.value("MergeFlow", runId, "join", "message")), /'differs'.*nothing was merged/);
  assert.equal(await project.value("MergeFlow", runId, "join", "passdown"), "a", "the second merge carried it over");
});

void test("include and exclude together are refused, naming both", async () => {
  project.write(
    "both.ts",
    `${HEADER}
export default class BothFlow extends FlowSpec {
  declare x: number;
  @step start() { this.x = 1; this.next(this.a, this.b); }
  @step a() { this.next(this.join); }
  @step b() { this.next(this.join); }
  @step join(inputs: Inputs<BothFlow>) { this.mergeArtifacts(inputs, { include: ["x"], exclude: ["y"] }); this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "both.ts"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /mergeArtifacts\(\) was given both include \('x'\) and exclude \('y'\); give one of them/);
});

void test("foreach over strings (nested, as Metaflow's nested_foreach shape), a Set, a Map, a typed array and a generator; foreachStack lists the frames", async () => {
  project.write(
    "iter.ts",
    `${HEADER}
export default class IterFlow extends FlowSpec {
  declare words: string[]; declare letters: string; declare path: string; declare joined: string[];
  declare set: Set<string>; declare map: Map<string, number>; declare nums: Float64Array; declare gen: Iterable<number>;
  declare fromSet: string; declare fromMap: [string, number]; declare fromNums: number; declare fromGen: number;
  declare sums: unknown[];
  @step start() { this.words = ["abc", "de"]; this.next(this.word, { foreach: "words" }); }
  @step word() { this.letters = this.input as string; this.next(this.letter, { foreach: "letters" }); }
  @step letter() {
    const stack = this.foreachStack();
    this.path = stack.map((f) => f.step + ":" + f.index + "/" + f.numSplits + "=" + String(f.value)).join(" ");
    this.next(this.innerJoin);
  }
  @step innerJoin(inputs: Inputs<IterFlow>) { this.joined = inputs.map((i) => i.path); this.next(this.outerJoin); }
  @step outerJoin(inputs: Inputs<IterFlow>) { this.joined = inputs.flatMap((i) => i.joined); this.next(this.kinds); }
  @step kinds() { this.set = new Set(["x", "y"]); this.next(this.eachSet, { foreach: "set" }); }
  @step eachSet() { this.fromSet = this.input as string; this.next(this.setJoin); }
  @step setJoin(inputs: Inputs<IterFlow>) { this.sums = inputs.map((i) => i.fromSet); this.map = new Map([["k", 1], ["l", 2]]); this.next(this.eachMap, { foreach: "map" }); }
  @step eachMap() { this.fromMap = this.input as [string, number]; this.next(this.mapJoin); }
  @step mapJoin(inputs: Inputs<IterFlow>) { this.sums = [...(inputs[0]!.sums as unknown[]), ...inputs.map((i) => i.fromMap)]; this.nums = Float64Array.from([1.5, 2.5]); this.next(this.eachNum, { foreach: "nums" }); }
  @step eachNum() { this.fromNums = this.input as number; this.next(this.numJoin); }
  @step numJoin(inputs: Inputs<IterFlow>) {
    this.sums = [...(inputs[0]!.sums as unknown[]), ...inputs.map((i) => i.fromNums)];
    this.gen = (function* () { yield 10; yield 20; yield 30; })();
    this.next(this.eachGen, { foreach: "gen" });
  }
  @step eachGen() { this.fromGen = this.input as number; this.next(this.genJoin); }
  @step genJoin(inputs: Inputs<IterFlow>) { this.sums = [...(inputs[0]!.sums as unknown[]), ...inputs.map((i) => i.fromGen)]; this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "iter.ts"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const runId = await project.latestRun("IterFlow");
  assert.deepEqual(await project.value("IterFlow", runId, "outerJoin", "joined"), [
    "start:0/2=abc word:0/3=a",
    "start:0/2=abc word:1/3=b",
    "start:0/2=abc word:2/3=c",
    "start:1/2=de word:0/2=d",
    "start:1/2=de word:1/2=e",
  ]);
  assert.deepEqual(await project.value("IterFlow", runId, "genJoin", "sums"), ["x", "y", ["k", 1], ["l", 2], 1.5, 2.5, 10, 20, 30]);
  // A generator is read once: the artifact holds its elements.
  assert.deepEqual(await project.value("IterFlow", runId, "numJoin", "gen"), [10, 20, 30]);
  // A Set stays a Set; its tasks get its elements in order.
  assert.deepEqual(await project.value("IterFlow", runId, "kinds", "set"), new Set(["x", "y"]));
});

void test("a foreach over a non-iterable or an endless iterable fails with a clear message", async () => {
  project.write(
    "endless.ts",
    `${HEADER}
export default class EndlessFlow extends FlowSpec {
  declare items: Iterable<number>;
  @step start() { this.items = (function* () { let i = 0; for (;;) yield i++; })(); this.next(this.each, { foreach: "items" }); }
  @step each() { this.next(this.join); }
  @step join(inputs: Inputs<EndlessFlow>) { this.next(this.end); }
  @step end() {}
}`,
  );
  const r = await project.cli(["run", "endless.ts", "--max-num-splits", "50"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /foreach over 'items' with more than 50 \(it may be endless\) elements, more than --max-num-splits \(50\)/);
});
