/** Errors of the deployment compilers, schedules and projects. */
import { MetaflowError } from "../errors.js";

/** A flow (or an option of its deployment) cannot be deployed as asked; the message says how to fix it. */
export class DeployError extends MetaflowError {
  constructor(headline: string, message?: string) {
    super("deploy", headline, message);
  }
}

export { ScheduleError } from "../decorators/schedule.js";
export { ProjectNameError } from "../decorators/project.js";

/** Someone tried to deploy over a production deployment without its production token. */
export class ProductionTokenError extends MetaflowError {
  constructor(
    readonly deployment: string,
    message: string,
  ) {
    super("production-token", `Not authorized to deploy ${deployment}`, message);
  }
}
