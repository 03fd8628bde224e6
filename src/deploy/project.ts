/**
 * `@project({ name })`: deployments named `<name>.<branch>.<Flow>` so people and branches do not
 * overwrite each other, and the production token that guards a deployment's namespace.
 *
 * The token rules are Metaflow's: the first `create` of a deployment generates a token and its runs
 * live in the namespace `production:<token>`; redeploying keeps the token (and the namespace); only
 * whoever knows the token may deploy over it — the person who deployed it (the token is kept in
 * their `~/.metaflowconfig/tokens/`) or someone given it who passes `--authorize TOKEN`;
 * `--new-token` starts a new namespace. The deployment itself records its token and last deployer
 * (as tags of the state machine), so the check needs nothing else.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ProjectNameError, type ProjectInfo } from "../decorators/project.js";
import { UsageError } from "../errors.js";
import { ProductionTokenError } from "./errors.js";

export {
  parseProjectOptions,
  projectInfo,
  projectSystemTags,
  userBranchPart,
  type BranchChoice,
  type ProjectInfo,
  type ProjectOptions,
} from "../decorators/project.js";

/** Longest state machine name. */
export const MAX_DEPLOYMENT_NAME = 80;

/**
 * The deployment (state machine) name of a flow: its `projectFlowName` under `@project`, else the
 * flow's class name; checked against what Step Functions accepts.
 */
export function deploymentName(flowName: string, info?: ProjectInfo): string {
  const name = info?.projectFlowName ?? flowName;
  if (name.length > MAX_DEPLOYMENT_NAME) {
    throw new ProjectNameError(
      `The deployment name ${name} has ${name.length} characters; Step Functions allows ${MAX_DEPLOYMENT_NAME}. Use a shorter ${info ? "project name or --branch" : "flow class name"}.`,
    );
  }
  // Step Functions refuses whitespace, brackets, wildcards and these specials in names.
  if (/[\s<>{}[\]?*"#%\\^|~`$&,;:/]/.test(name) || /[\x00-\x1f\x7f]/.test(name)) {
    throw new ProjectNameError(
      `The deployment name ${JSON.stringify(name)} has characters Step Functions does not allow in a name`,
    );
  }
  return name;
}

/** What a deployment records about itself (as state machine tags). */
export interface DeploymentRecord {
  /** The production token: deployed runs are in the namespace `production:<token>`. */
  readonly token: string;
  /** Who deployed it last. */
  readonly deployer: string;
}

/** What `create` knows when it decides the token. */
export interface TokenRequest {
  readonly deployment: string;
  /** The user deploying now. */
  readonly user: string;
  /** The deployment's record, when it exists already. */
  readonly existing?: DeploymentRecord;
  /** The token this user's machine keeps for the deployment (from an earlier create or --authorize). */
  readonly known?: string;
  /** `--authorize TOKEN`. */
  readonly authorize?: string;
  /** `--new-token`. */
  readonly newToken?: boolean;
}

/** The decision: the token to deploy with and the record to store. */
export interface TokenDecision {
  readonly token: string;
  readonly record: DeploymentRecord;
  /** Whether a new token (so a new namespace) was generated. */
  readonly generated: boolean;
}

/** A new production token: the deployment's flow name, lowercased, and 12 random characters. */
export function newProductionToken(deployment: string): string {
  const flow =
    (deployment.split(".").at(-1) ?? "flow")
      .toLowerCase()
      .replace(/[^a-z0-9]/g, "")
      .slice(0, 30) || "flow";
  return `${flow}-${randomBytes(9)
    .toString("base64url")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "0")
    .slice(0, 12)}`;
}

/** The namespace of a deployment's runs. */
export function productionNamespace(token: string): string {
  return `production:${token}`;
}

/**
 * Decides the production token of a `create`, refusing to deploy over someone else's deployment
 * without its token (a ProductionTokenError that says how to get authorized).
 */
export function resolveProductionToken(
  req: TokenRequest,
  generate: () => string = () => newProductionToken(req.deployment),
): TokenDecision {
  const { existing } = req;
  // An empty token would become the namespace `production:` of a first deployment.
  if (req.authorize !== undefined && req.authorize.trim() === "") {
    throw new UsageError(
      `--authorize needs the production token of ${req.deployment} (its deployer has it), got ${JSON.stringify(req.authorize)}`,
    );
  }
  if (existing) {
    if (req.authorize !== undefined && req.authorize !== existing.token) {
      throw new ProductionTokenError(
        req.deployment,
        `--authorize ${req.authorize} is not the production token of ${req.deployment}; ask ${existing.deployer}, who deployed it last, for the right one`,
      );
    }
    const allowed =
      req.authorize !== undefined || req.known === existing.token || req.user === existing.deployer;
    if (!allowed) {
      throw new ProductionTokenError(
        req.deployment,
        `${req.deployment} was deployed by ${existing.deployer}; deploying over it would change what runs in its production namespace. ` +
          `Ask ${existing.deployer} for its production token and run 'step-functions create --authorize TOKEN', or deploy your own copy with --branch NAME.`,
      );
    }
  }
  const generated =
    req.newToken === true ||
    (existing === undefined && req.authorize === undefined && req.known === undefined);
  const token = generated ? generate() : (existing?.token ?? req.authorize ?? req.known!);
  return { token, record: { token, deployer: req.user }, generated };
}

/** Tag keys under which a state machine keeps its DeploymentRecord. */
export const RECORD_TAGS = {
  token: "metaflow-ts:production-token",
  deployer: "metaflow-ts:deployer",
} as const;

/** The record as state machine tags. */
export function recordToTags(record: DeploymentRecord): Array<{ key: string; value: string }> {
  return [
    { key: RECORD_TAGS.token, value: record.token },
    { key: RECORD_TAGS.deployer, value: record.deployer },
  ];
}

/** The record read back from a state machine's tags; undefined when it carries none. */
export function recordFromTags(
  tags: ReadonlyArray<{ key?: string; value?: string }>,
): DeploymentRecord | undefined {
  const get = (k: string) => tags.find((t) => t.key === k)?.value;
  const token = get(RECORD_TAGS.token);
  const deployer = get(RECORD_TAGS.deployer);
  return token && deployer ? { token, deployer } : undefined;
}

/** Where this machine keeps the token it knows for a deployment: `<home>/tokens/<deployment>`. */
export function tokenFile(metaflowHome: string, deployment: string): string {
  return path.join(metaflowHome, "tokens", deploymentName(deployment));
}

/** The token this machine knows for `deployment`, if any. */
export function readKnownToken(metaflowHome: string, deployment: string): string | undefined {
  try {
    const text = fs.readFileSync(tokenFile(metaflowHome, deployment), "utf8").trim();
    return text === "" ? undefined : text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Keeps `token` as the one this machine knows for `deployment` (readable by the user only). */
export function storeKnownToken(metaflowHome: string, deployment: string, token: string): void {
  const file = tokenFile(metaflowHome, deployment);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
