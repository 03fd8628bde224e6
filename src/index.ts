/**
 * Metaflow.ts: write a flow of steps in TypeScript; run every task isolated and in parallel, every
 * artifact versioned.
 *
 * @example
 * import { FlowSpec, step } from "metaflow-ts";
 *
 * export default class HelloFlow extends FlowSpec {
 *   declare greeting: string;
 *   @step start() {
 *     this.greeting = "hello";
 *     this.next(this.end);
 *   }
 *   @step end() {
 *     console.log(this.greeting);
 *   }
 * }
 */
export * from "./api.js";
export { Runner, ExecutingRun, RunnerFailedError } from "./runner.js";
export type { RunnerOptions, RunnerLogLine } from "./runner.js";
export type { ResumeOptions, RunOptions, RunSummary } from "./runtime/run.js";
export { Deployer, StepFunctionsDeployer, DeployedFlow, TriggeredRun, DeployedRunError } from "./deployer.js";
export type { DeployerOptions, StepFunctionsOptions } from "./deployer.js";
export type { AwsTarget } from "./deploy/step-functions/aws.js";
