/**
 * `@project({ name })`: the runs and deployments of a project are named by branch, so people and
 * branches do not overwrite each other. The branch is `user.<user>` by default, `test.<B>` with
 * `--branch B`, `prod` with `--production` (of `metaflow run` and of `step-functions create`); the
 * run carries it as system tags (`project:<name>`, `project_branch:<branch>`), and inside a task
 * `current.projectName`, `branchName`, `isProduction` and `projectFlowName` report it.
 */
import { MetaflowError } from "../errors.js";
import { current } from "../flow/current.js";
import { flowDecorator } from "./make.js";

declare module "../flow/current.js" {
  interface CurrentExtensions {
    /** `@project`'s name, e.g. `recsys` (undefined without `@project`). */
    readonly projectName: string | undefined;
    /** The branch: `user.<name>`, `test.<B>` or `prod` (undefined without `@project`). */
    readonly branchName: string | undefined;
    /** True on the `prod` branch (`--production`); undefined without `@project`. */
    readonly isProduction: boolean | undefined;
    /** `<project>.<branch>.<Flow>`: also the name of the branch's deployment. */
    readonly projectFlowName: string | undefined;
  }
}

/** A `@project` name, a branch or a deployment name is not valid. */
export class ProjectNameError extends MetaflowError {
  constructor(message: string) {
    super("project-name", "Bad project or branch name", message);
  }
}

/** Options of `@project`. */
export interface ProjectOptions {
  /** Project name: lowercase letters, digits and `_`, starting with a letter, at most 40 characters. */
  readonly name: string;
}

/** Which branch a run or a deployment is for. */
export interface BranchChoice {
  /** `--branch B`: the test branch `test.B`. */
  readonly branch?: string;
  /** `--production`: the `prod` branch. */
  readonly production?: boolean;
}

/** What `current.projectName`, `branchName`, `isProduction`, `projectFlowName` report. */
export interface ProjectInfo {
  readonly projectName: string;
  readonly branchName: string;
  readonly isProduction: boolean;
  /** `<projectName>.<branchName>.<Flow>`: also the deployment's name. */
  readonly projectFlowName: string;
}

const PROJECT_RE = /^[a-z][a-z0-9_]{0,39}$/;
const BRANCH_RE = /^[A-Za-z0-9_-]{1,40}$/;

/** Validates `@project` options; the error names the bad value and the rule. */
export function parseProjectOptions(raw: unknown): ProjectOptions {
  const name = (raw as { name?: unknown } | null)?.name;
  if (
    typeof raw !== "object" ||
    raw === null ||
    typeof name !== "string" ||
    !PROJECT_RE.test(name)
  ) {
    throw new ProjectNameError(
      `@project.name must be lowercase letters, digits and _ starting with a letter (at most 40), e.g. @project({ name: "recsys" }); got ${JSON.stringify(name)}`,
    );
  }
  const extra = Object.keys(raw).filter((k) => k !== "name");
  if (extra.length > 0)
    throw new ProjectNameError(`@project has no option '${extra[0]}'; its only option is name`);
  return { name };
}

/** A user name as it may appear in a branch: characters outside letters, digits, `_` and `-` become `_`. */
export function userBranchPart(user: string): string {
  const part = user.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40);
  if (part.replace(/_/g, "") === "")
    throw new ProjectNameError(
      `The user name ${JSON.stringify(user)} cannot name a branch; set METAFLOW_USER to a plain name`,
    );
  return part;
}

/**
 * The project names of a run or deployment: branch `user.<user>` by default, `test.<B>` with
 * `--branch B`, `prod` with `--production`.
 * @example
 * projectInfo({ name: "recsys" }, "TrainFlow", "bob", {}).projectFlowName; // "recsys.user.bob.TrainFlow"
 */
export function projectInfo(
  project: ProjectOptions,
  flowName: string,
  user: string,
  choice: BranchChoice = {},
): ProjectInfo {
  if (choice.production && choice.branch !== undefined) {
    throw new ProjectNameError(
      `Give --branch or --production, not both: --production deploys the prod branch, --branch ${choice.branch} the test branch test.${choice.branch}`,
    );
  }
  let branchName: string;
  if (choice.production) branchName = "prod";
  else if (choice.branch !== undefined) {
    if (!BRANCH_RE.test(choice.branch)) {
      throw new ProjectNameError(
        `--branch must be letters, digits, _ or - (at most 40), e.g. --branch new_model; got ${JSON.stringify(choice.branch)}`,
      );
    }
    branchName = `test.${choice.branch}`;
  } else branchName = `user.${userBranchPart(user)}`;
  return {
    projectName: project.name,
    branchName,
    isProduction: choice.production === true,
    projectFlowName: `${project.name}.${branchName}.${flowName}`,
  };
}

/** System tags of runs of a project (as Metaflow's): `project:<name>`, `project_branch:<branch>`. */
export function projectSystemTags(info: ProjectInfo): string[] {
  return [`project:${info.projectName}`, `project_branch:${info.branchName}`];
}

const BRANCH_TAG = "project_branch:";

/** The project of a running task, read back from its run's system tags. */
export function projectFromTags(
  name: string,
  flowName: string,
  tags: readonly string[],
): ProjectInfo | undefined {
  const branch = tags.find((t) => t.startsWith(BRANCH_TAG))?.slice(BRANCH_TAG.length);
  if (branch === undefined) return undefined;
  return {
    projectName: name,
    branchName: branch,
    isProduction: branch === "prod",
    projectFlowName: `${name}.${branch}.${flowName}`,
  };
}

/**
 * Names the flow's runs and deployments by project and branch.
 * @example @project({ name: "recsys" }) export default class TrainFlow extends FlowSpec { ... }
 */
export const project = flowDecorator<ProjectOptions, ProjectOptions>({
  name: "project",
  help: "project({ name }): names runs and deployments <name>.<branch>.<Flow>",
  parse: (raw) => parseProjectOptions(raw),
  runTags(options, run) {
    return projectSystemTags(
      projectInfo(options, run.flowName, run.user, {
        ...(run.branch !== undefined ? { branch: run.branch } : {}),
        production: run.production,
      }),
    );
  },
  async runStep(task, next, options) {
    const info = projectFromTags(options.name, task.flowName, current.tags);
    if (info) for (const [key, value] of Object.entries(info)) task.setCurrent(key, value);
    await next();
  },
});
