/**
 * Production: the same flow runs on your laptop and, deployed, on AWS Step Functions with its
 * tasks on AWS Batch — every night at 03:00 Amsterdam time. `@project` keeps the deployments of
 * each person and branch apart; `current` says which one a task runs in.
 *
 *   npx metaflow run examples/production.ts --branch tuning          # locally, as branch test.tuning
 *   npx metaflow step-functions create examples/production.ts --only-json   # what would be deployed
 *   npx metaflow step-functions create examples/production.ts --production  # deploy (needs AWS, see docs/production.md)
 *   npx metaflow step-functions trigger examples/production.ts --production --alpha 0.2
 */
import {
  current,
  FlowSpec,
  Parameter,
  project,
  resources,
  retry,
  schedule,
  step,
  type Inputs,
} from "metaflow-ts";

@project({ name: "demo" })
@schedule({ cron: "0 3 * * *", timezone: "Europe/Amsterdam" })
export default class ProductionFlow extends FlowSpec {
  alpha = Parameter("alpha", { default: 0.1, help: "Learning rate" });
  declare deployment: string;
  declare seeds: number[];
  declare score: number;
  declare best: number;

  @step start() {
    // `demo.user.<you>.ProductionFlow` locally; `demo.prod.ProductionFlow` when deployed with --production.
    this.deployment = current.projectFlowName ?? current.flowName;
    this.seeds = [1, 2, 3];
    this.next(this.train, { foreach: "seeds" });
  }

  /** Deployed, every step is an AWS Batch job; @resources sizes this one (and @retry retries it). */
  @resources({ cpu: 2, memory: 4096 })
  @retry({ times: 2 })
  @step
  train() {
    this.score = 1 - this.alpha / (this.input as number);
    this.next(this.join);
  }

  @step join(inputs: Inputs<ProductionFlow>) {
    this.best = Math.max(...inputs.map((i) => i.score));
    this.mergeArtifacts(inputs, { include: ["deployment"] });
    this.next(this.end);
  }

  @step end() {
    console.log(
      `${this.deployment} (production: ${current.isProduction}): best score ${this.best.toFixed(3)}`,
    );
  }
}
