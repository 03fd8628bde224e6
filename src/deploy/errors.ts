/** Errors of the deployment compilers, schedules and projects. */
import { MetaflowError } from "../errors.js";

/** A flow (or an option of its deployment) cannot be deployed as asked; the message says how to fix it. */
export class DeployError extends MetaflowError {
  constructor(headline: string, message?: string) {
    super("deploy", headline, message);
  }
}

/** A `@schedule` expression or option is not valid; `reason` names the bad field. */
export class ScheduleError extends MetaflowError {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super("schedule", `Bad @schedule ${input}`, `@schedule ${input}: ${reason}`);
  }
}

/** A `@project` name, a branch or a deployment name is not valid. */
export class ProjectNameError extends MetaflowError {
  constructor(message: string) {
    super("project-name", "Bad project or branch name", message);
  }
}

/** Someone tried to deploy over a production deployment without its production token. */
export class ProductionTokenError extends MetaflowError {
  constructor(
    readonly deployment: string,
    message: string,
  ) {
    super("production-token", `Not authorized to deploy ${deployment}`, message);
  }
}
