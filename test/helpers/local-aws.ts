/**
 * A local stand-in for the AWS services a deployment talks to, on one loopback HTTP port, speaking
 * their wire protocols so the real SDK clients (and so the real `step-functions` commands, the
 * Deployer and the `batch` launcher) run against it unchanged:
 * - Step Functions (JSON 1.0): state machines with tags, executions run by aws-local-stepfunctions;
 *   every definition it is given must pass asl-validator;
 * - EventBridge Scheduler (REST): schedules are kept, not fired;
 * - Batch (REST): job definitions are kept; a job — submitted directly, or by a task state of an
 *   execution — runs its command as a local process with the job definition's environment plus
 *   the overrides, as a container would.
 * Nothing here decides what a task does: the processes are the real `metaflow task`.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import validator from "asl-validator";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { AwsTarget } from "../../src/deploy/step-functions/aws.js";
import type { AslMachine } from "../../src/deploy/step-functions/asl.js";
import { CLI } from "./project.js";
import { runLocally, type SubmittedJob } from "./sfn-local.js";

const ACCOUNT = "123456789012";
const REGION = "us-east-1";
const CREDENTIALS = { accessKeyId: "LOCALAWS", secretAccessKey: "LOCALAWS" };

/** What the host and its IAM role give every job: S3 access (s3rver's endpoint and keys). */
export interface LocalAwsOptions {
  readonly jobEnv: Readonly<Record<string, string>>;
  readonly s3: {
    readonly endpoint: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
  };
}

interface Execution {
  readonly arn: string;
  readonly name: string;
  readonly stateMachineArn: string;
  readonly input: string;
  status: "RUNNING" | "SUCCEEDED" | "FAILED";
  readonly startDate: number;
  stopDate?: number;
  error?: string;
  cause?: string;
  done: Promise<void>;
}

/** A job as the Batch API describes it. */
interface Job {
  readonly jobId: string;
  readonly jobName: string;
  readonly jobQueue: string;
  readonly jobDefinition: string;
  status: "RUNNABLE" | "RUNNING" | "SUCCEEDED" | "FAILED";
  statusReason?: string;
  exitCode?: number;
  readonly overrides: Record<string, any>;
  kill?: () => void;
}

class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** The running stand-in. */
export class LocalAws {
  readonly stateMachines = new Map<
    string,
    { arn: string; definition: AslMachine; roleArn: string; tags: Map<string, string> }
  >();
  readonly schedules = new Map<string, Record<string, any>>();
  readonly jobDefinitions = new Map<string, Record<string, any>>();
  readonly executions = new Map<string, Execution>();
  readonly jobs = new Map<string, Job>();
  /** How many definitions passed asl-validator. */
  validated = 0;
  /** Every job that ran, in order: the queue, the resources and the command. */
  readonly submitted: SubmittedJob[] = [];
  /** How many times each Batch operation was called (lower case, e.g. `registerjobdefinition`). */
  readonly batchCalls = new Map<string, number>();
  private readonly server: http.Server;
  private readonly s3: S3Client;
  private readonly scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mf-localaws-"));
  private jobCounter = 0;
  url = "";

  private constructor(private readonly options: LocalAwsOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.s3 = new S3Client({
      region: REGION,
      endpoint: options.s3.endpoint,
      forcePathStyle: true,
      credentials: {
        accessKeyId: options.s3.accessKeyId,
        secretAccessKey: options.s3.secretAccessKey,
      },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  /** Starts the stand-in on a free port. */
  static async start(options: LocalAwsOptions): Promise<LocalAws> {
    const aws = new LocalAws(options);
    await new Promise<void>((resolve) => aws.server.listen(0, "127.0.0.1", resolve));
    aws.url = `http://127.0.0.1:${(aws.server.address() as AddressInfo).port}`;
    return aws;
  }

  /** The AWS target for in-process callers (the Deployer). */
  get target(): AwsTarget {
    return {
      region: REGION,
      credentials: CREDENTIALS,
      endpoints: { sfn: this.url, scheduler: this.url, batch: this.url },
    };
  }

  /**
   * Environment that points a `metaflow` process's AWS clients here (the SDK's own variables); the
   * stand-in accepts any credentials, so the ones in the environment for S3 serve.
   */
  env(): Record<string, string> {
    return {
      AWS_REGION: REGION,
      AWS_ENDPOINT_URL_SFN: this.url,
      AWS_ENDPOINT_URL_SCHEDULER: this.url,
      AWS_ENDPOINT_URL_BATCH: this.url,
    };
  }

  /** Waits for every execution started so far to end. */
  async settle(): Promise<void> {
    await Promise.all([...this.executions.values()].map((e) => e.done));
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.kill?.();
    await this.settle().catch(() => undefined);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.s3.destroy();
    fs.rmSync(this.scratch, { recursive: true, force: true });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body = text === "" ? {} : (JSON.parse(text) as Record<string, any>);
    const url = new URL(req.url ?? "/", this.url);
    const target = req.headers["x-amz-target"];
    try {
      let out: unknown;
      if (typeof target === "string" && target.startsWith("AWSStepFunctions."))
        out = this.sfn(target.slice(17), body);
      else if (url.pathname.startsWith("/schedules/"))
        out = this.scheduler(req.method ?? "GET", decodeURIComponent(url.pathname.slice(11)), body);
      else if (url.pathname.startsWith("/v1/")) out = this.batch(url.pathname.slice(4), body);
      else
        throw new AwsError(
          404,
          "UnknownOperation",
          `local AWS does not serve ${req.method} ${url.pathname}`,
        );
      res.writeHead(200, {
        "content-type":
          typeof target === "string" ? "application/x-amz-json-1.0" : "application/json",
      });
      res.end(JSON.stringify(out ?? {}));
    } catch (err) {
      const e =
        err instanceof AwsError
          ? err
          : new AwsError(500, "InternalFailure", (err as Error).stack ?? String(err));
      res.writeHead(e.status, { "content-type": "application/json", "x-amzn-errortype": e.type });
      res.end(JSON.stringify({ __type: e.type, message: e.message, Message: e.message }));
    }
  }

  private sfn(op: string, b: Record<string, any>): unknown {
    const byArn = (arn: string) => [...this.stateMachines.entries()].find(([, m]) => m.arn === arn);
    switch (op) {
      case "ListStateMachines":
        return {
          stateMachines: [...this.stateMachines.entries()].map(([name, m]) => ({
            name,
            stateMachineArn: m.arn,
            type: "STANDARD",
            creationDate: 0,
          })),
        };
      case "ListTagsForResource": {
        const m = byArn(b.resourceArn)?.[1];
        if (!m) throw new AwsError(400, "ResourceNotFound", `no state machine ${b.resourceArn}`);
        return { tags: [...m.tags].map(([key, value]) => ({ key, value })) };
      }
      case "TagResource": {
        const m = byArn(b.resourceArn)?.[1];
        if (!m) throw new AwsError(400, "ResourceNotFound", `no state machine ${b.resourceArn}`);
        for (const t of b.tags ?? []) m.tags.set(t.key, t.value);
        return {};
      }
      case "CreateStateMachine": {
        if (this.stateMachines.has(b.name))
          throw new AwsError(400, "StateMachineAlreadyExists", `${b.name} exists`);
        const arn = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${b.name}`;
        this.stateMachines.set(b.name, {
          arn,
          definition: this.validate(b.definition),
          roleArn: b.roleArn,
          tags: new Map((b.tags ?? []).map((t: any) => [t.key, t.value])),
        });
        return { stateMachineArn: arn, creationDate: Date.now() / 1000 };
      }
      case "UpdateStateMachine": {
        const found = byArn(b.stateMachineArn);
        if (!found)
          throw new AwsError(
            400,
            "StateMachineDoesNotExist",
            `no state machine ${b.stateMachineArn}`,
          );
        found[1].definition = this.validate(b.definition);
        if (b.roleArn) found[1].roleArn = b.roleArn;
        return { updateDate: Date.now() / 1000 };
      }
      case "DeleteStateMachine": {
        const found = byArn(b.stateMachineArn);
        if (found) this.stateMachines.delete(found[0]);
        return {};
      }
      case "StartExecution":
        return this.startExecution(b);
      case "DescribeExecution": {
        const e = this.executions.get(b.executionArn);
        if (!e) throw new AwsError(400, "ExecutionDoesNotExist", `no execution ${b.executionArn}`);
        return describe(e);
      }
      case "ListExecutions":
        return {
          executions: [...this.executions.values()]
            .filter((e) => e.stateMachineArn === b.stateMachineArn)
            .reverse()
            .map(describe),
        };
      default:
        throw new AwsError(
          400,
          "UnknownOperationException",
          `local AWS does not implement StepFunctions.${op}`,
        );
    }
  }

  private validate(text: string): AslMachine {
    const definition = JSON.parse(text) as AslMachine;
    const result = validator(definition as never);
    if (!result.isValid)
      throw new AwsError(400, "InvalidDefinition", JSON.stringify(result.errors));
    this.validated += 1;
    return definition;
  }

  private startExecution(b: Record<string, any>): unknown {
    const found = [...this.stateMachines.entries()].find(([, m]) => m.arn === b.stateMachineArn);
    if (!found)
      throw new AwsError(400, "StateMachineDoesNotExist", `no state machine ${b.stateMachineArn}`);
    const [smName, machine] = found;
    const name = b.name ?? `exec-${this.executions.size + 1}`;
    const arn = `arn:aws:states:${REGION}:${ACCOUNT}:execution:${smName}:${name}`;
    const input = b.input ?? "{}";
    const e: Execution = {
      arn,
      name,
      stateMachineArn: machine.arn,
      input,
      status: "RUNNING",
      startDate: Date.now() / 1000,
      done: Promise.resolve(),
    };
    e.done = runLocally(machine.definition, JSON.parse(input), {
      executionName: name,
      stateMachineArn: machine.arn,
      runJob: (job) =>
        this.runJob(
          job.jobName,
          job.queue,
          job.definition,
          {
            command: [...job.command],
            environment: job.environment,
            resourceRequirements: job.resources,
          },
          job,
        ).then(() => undefined),
      readObject: (bucket, key) => this.readObject(bucket, key),
    }).then((r) => {
      e.status = r.ok ? "SUCCEEDED" : "FAILED";
      if (!r.ok) Object.assign(e, { error: r.error, cause: r.cause });
      e.stopDate = Date.now() / 1000;
    });
    this.executions.set(arn, e);
    return { executionArn: arn, startDate: e.startDate };
  }

  private async readObject(bucket: string, key: string): Promise<string | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await out.Body!.transformToString();
    } catch (err) {
      if ((err as Error).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  private scheduler(method: string, name: string, b: Record<string, any>): unknown {
    if (method === "POST") {
      if (this.schedules.has(name))
        throw new AwsError(409, "ConflictException", `schedule ${name} exists`);
      this.schedules.set(name, { ...b, Name: name });
      return { ScheduleArn: `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/default/${name}` };
    }
    if (!this.schedules.has(name))
      throw new AwsError(404, "ResourceNotFoundException", `no schedule ${name}`);
    if (method === "PUT") this.schedules.set(name, { ...b, Name: name });
    if (method === "DELETE") this.schedules.delete(name);
    return method === "GET"
      ? this.schedules.get(name)
      : { ScheduleArn: `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/default/${name}` };
  }

  private batch(op: string, b: Record<string, any>): unknown {
    this.batchCalls.set(op, (this.batchCalls.get(op) ?? 0) + 1);
    switch (op) {
      case "registerjobdefinition": {
        const revision = (this.jobDefinitions.get(b.jobDefinitionName)?.revision ?? 0) + 1;
        this.jobDefinitions.set(b.jobDefinitionName, { ...b, revision });
        return {
          jobDefinitionName: b.jobDefinitionName,
          revision,
          jobDefinitionArn: `arn:aws:batch:${REGION}:${ACCOUNT}:job-definition/${b.jobDefinitionName}:${revision}`,
        };
      }
      case "describejobdefinitions": {
        const d = this.jobDefinitions.get(b.jobDefinitionName);
        return {
          jobDefinitions: d
            ? [
                {
                  jobDefinitionName: b.jobDefinitionName,
                  revision: d.revision,
                  status: "ACTIVE",
                  type: "container",
                },
              ]
            : [],
        };
      }
      case "submitjob": {
        const jobId = `job-${++this.jobCounter}`;
        const job: Job = {
          jobId,
          jobName: b.jobName,
          jobQueue: b.jobQueue,
          jobDefinition: b.jobDefinition,
          status: "RUNNABLE",
          overrides: b.containerOverrides ?? {},
        };
        this.jobs.set(jobId, job);
        const o = job.overrides;
        const env = (o.environment ?? []).map((v: any) => ({ Name: v.name, Value: v.value }));
        const resources = (o.resourceRequirements ?? []).map((r: any) => ({
          Type: r.type,
          Value: r.value,
        }));
        this.runJob(
          b.jobName,
          b.jobQueue,
          b.jobDefinition,
          { command: o.command ?? [], environment: env, resourceRequirements: resources },
          undefined,
          job,
        ).catch(() => undefined);
        return {
          jobId,
          jobName: b.jobName,
          jobArn: `arn:aws:batch:${REGION}:${ACCOUNT}:job/${jobId}`,
        };
      }
      case "describejobs":
        return {
          jobs: (b.jobs as string[]).flatMap((id) => {
            const j = this.jobs.get(id);
            return j
              ? [
                  {
                    jobId: j.jobId,
                    jobName: j.jobName,
                    jobQueue: j.jobQueue,
                    jobDefinition: j.jobDefinition,
                    status: j.status,
                    statusReason: j.statusReason,
                    container: { exitCode: j.exitCode },
                    createdAt: 0,
                    startedAt: 0,
                  },
                ]
              : [];
          }),
        };
      case "terminatejob": {
        const j = this.jobs.get(b.jobId);
        if (j) {
          j.statusReason = b.reason;
          j.kill?.();
        }
        return {};
      }
      default:
        throw new AwsError(400, "ClientException", `local AWS does not implement Batch ${op}`);
    }
  }

  /** Runs one job's command as a process with the container's environment; rejects (States.TaskFailed) when it fails. */
  private runJob(
    jobName: string,
    queue: string,
    definitionName: string,
    o: {
      command: string[];
      environment: ReadonlyArray<{ Name: string; Value: string }>;
      resourceRequirements: ReadonlyArray<{ Type: string; Value: string }>;
    },
    submitted?: SubmittedJob,
    job?: Job,
  ): Promise<void> {
    const def = this.jobDefinitions.get(definitionName.replace(/:\d+$/, ""));
    if (!def)
      return Promise.reject(
        Object.assign(new Error(`no job definition ${definitionName}`), {
          name: "States.TaskFailed",
        }),
      );
    this.submitted.push(
      submitted ?? {
        state: "",
        jobName,
        queue,
        definition: definitionName,
        resources: o.resourceRequirements,
        environment: o.environment,
        attemptSeconds: 0,
        command: o.command,
      },
    );
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.scratch,
      TMPDIR: this.scratch,
      ...this.options.jobEnv,
    };
    for (const v of def.containerProperties?.environment ?? []) env[v.name] = v.value;
    for (const v of o.environment) env[v.Name] = v.Value;
    // The image's `metaflow` is this checkout's CLI.
    const [program, ...args] = o.command;
    const argv = program === "metaflow" ? [CLI, ...args] : [program!, ...args];
    return new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, argv, {
        cwd: this.scratch,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stdout.resume();
      child.stderr
        .setEncoding("utf8")
        .on("data", (t: string) => (stderr = (stderr + t).slice(-4000)));
      if (job) {
        job.status = "RUNNING";
        job.kill = () => child.kill("SIGKILL");
      }
      child.once("close", (code, signal) => {
        if (process.env.LOCALAWS_DEBUG)
          process.stderr.write(`job ${jobName} ${code} ${Date.now() - t0} ms\n`);
        if (job) {
          job.status = code === 0 ? "SUCCEEDED" : "FAILED";
          job.exitCode = code ?? undefined;
          job.statusReason ??=
            code === 0
              ? "Essential container in task exited"
              : signal
                ? `killed by ${signal}`
                : `exit code ${code}`;
        }
        if (code === 0) resolve();
        else
          reject(
            Object.assign(new Error(`job ${jobName} exited with ${code ?? signal}: ${stderr}`), {
              name: "States.TaskFailed",
            }),
          );
      });
    });
  }
}

function describe(e: Execution): Record<string, unknown> {
  return {
    executionArn: e.arn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: e.startDate,
    ...(e.stopDate !== undefined ? { stopDate: e.stopDate } : {}),
    input: e.input,
    ...(e.error ? { error: e.error, cause: e.cause?.slice(0, 32000) } : {}),
  };
}
