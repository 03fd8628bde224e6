/**
 * Typed deployments, checked by the compiler (`npm run typecheck`): a `Deployer<Flow>` hands back
 * runs typed by the flow class, and `@project` types `current.projectName` and friends.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { current, Deployer, FlowSpec, step, type Run } from "../src/index.js";

class TrainFlow extends FlowSpec {
  declare score: number;

  @step start() {
    this.next(this.end);
  }

  @step end() {}
}

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const exact = <A, B>(_: Equals<A, B>): void => undefined;

// Never called: these bodies exist for the type checker.
export async function typedDeployment(): Promise<void> {
  const deployed = await new Deployer<TrainFlow>("flows/train.ts", { production: true })
    .stepFunctions()
    .create();
  const triggered = await deployed.trigger({ alpha: 0.1 });
  const run = await triggered.run();
  exact<Run<TrainFlow>, typeof run>(true);
  const score: number = await (await triggered.wait()).data("score");
  // @ts-expect-error "scor" is not an artifact of TrainFlow
  await run.data("scor");
  const listed = await deployed.list();
  exact<Run<TrainFlow>, Awaited<ReturnType<(typeof listed)[number]["run"]>>>(true);
  void [score, listed];
}

export function typedCurrent(): void {
  exact<string | undefined, typeof current.projectName>(true);
  exact<string | undefined, typeof current.branchName>(true);
  exact<boolean | undefined, typeof current.isProduction>(true);
  exact<string | undefined, typeof current.projectFlowName>(true);
}

void it("the Deployer is typed by the flow class, without I/O until awaited", () => {
  const deployer = new Deployer<TrainFlow>("flows/train.ts");
  assert.equal(deployer.flowFile, "flows/train.ts");
  assert.throws(
    () => new Deployer("f.ts", { branch: "x", production: true }),
    /branch or production, not both/,
  );
  assert.equal(typeof typedDeployment, "function");
  assert.equal(typeof typedCurrent, "function");
});
