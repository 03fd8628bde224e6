/**
 * Typed results, checked by the compiler (`npm run typecheck`): with the flow class as type
 * argument, `data(name)` has the artifact's declared type and a misspelled name does not compile.
 * The `@ts-expect-error` lines fail the type-check if they ever stop being errors.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { current, Flow, FlowSpec, Markdown, ProgressBar, Runner, step, Table, type CardSet, type Run, type Task } from "../src/index.js";

class TrainFlow extends FlowSpec {
  declare score: number;
  declare models: string[];
  declare weights: Float64Array;

  @step start() {
    this.next(this.end);
  }

  @step end() {}
}

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const exact = <A, B>(_: Equals<A, B>): void => undefined;

// Never called: these bodies exist for the type checker.
export async function typedReads(run: Run<TrainFlow>, task: Task<TrainFlow>): Promise<void> {
  exact<number, Awaited<ReturnType<typeof run.data<"score">>>>(true);
  const score: number = await run.data("score");
  const models: string[] = await task.data("models");
  const weights: Float64Array = await task.artifact("weights").data();
  // @ts-expect-error "scor" is not an artifact of TrainFlow
  await run.data("scor");
  // @ts-expect-error steps are not artifacts
  await run.data("start");
  // @ts-expect-error FlowSpec's own members are not artifacts
  await task.data("next");
  // @ts-expect-error score is a number, not a string
  const wrong: string = await run.data("score");
  void [score, models, weights, wrong];
}

export async function typedHandles(): Promise<void> {
  const viaOf = await Flow.of(TrainFlow).latestSuccessfulRun();
  const viaGeneric = await new Flow<TrainFlow>("TrainFlow").latestRun();
  const viaRunner = await new Runner<TrainFlow>("flows/train.ts").run({ alpha: 0.1 });
  exact<Run<TrainFlow>, typeof viaOf>(true);
  const a: number = await viaGeneric.data("score");
  const b: string[] = await viaRunner.data("models");
  // @ts-expect-error misspelled through Flow.of as well
  await viaOf.data("modles");
  // Without the class, names are any string and values unknown.
  const untyped = await new Flow("TrainFlow").latestRun();
  const anything = await untyped.data("anything");
  exact<unknown, typeof anything>(true);
  void anything;
  void [a, b];
}

// `current.card` is typed by the @card decorator's augmentation of CurrentExtensions.
export function typedCards(): void {
  exact<CardSet, typeof current.card>(true);
  const report = current.card.get("report");
  report.append(new Markdown("# Training")).extend([new ProgressBar({ max: 10 }), new Table([[1, 0.9]], { headers: ["epoch", "auc"] })]);
  report.refresh();
  current.card.clear().refresh();
  // @ts-expect-error get() takes an id string
  current.card.get(1);
  // @ts-expect-error a card has no such method
  current.card.publish();
}

void it("Flow.of names the flow after its class, without I/O", () => {
  assert.equal(Flow.of(TrainFlow).name, "TrainFlow");
  assert.equal(typeof typedReads, "function");
  assert.equal(typeof typedHandles, "function");
  assert.equal(typeof typedCards, "function");
});
