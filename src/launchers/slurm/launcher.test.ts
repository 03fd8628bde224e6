/**
 * The pure parts of the `slurm` launcher: a job array's script giving each element its own
 * `metaflow task` arguments (run by a real /bin/sh), those arguments for each kind of task, the
 * environment a job gets, the datastore reach rules, the new settings, and the `@slurm` plan.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { openBackends } from "../../backends.js";
import { ConfigError, loadConfig } from "../../config/index.js";
import { defaultPlan } from "../../decorators/contract.js";
import { slurm } from "../../decorators/slurm.js";
import type { TaskSpec } from "../../task/protocol.js";
import { privateDirectory, reachProblems, type ReachFacts } from "./reach.js";
import { expandedWord, jobComment, jobName, jobScript, parseLabels } from "./script.js";
import { remoteTaskArgs as taskArgs } from "../remote-task.js";
import { jobEnvironment } from "./task-command.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "mf-slurm-launcher-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function spec(over: Partial<TaskSpec>): TaskSpec {
  return {
    flowName: "F",
    className: "F",
    runId: "7",
    step: "train",
    taskId: "5",
    attempt: 0,
    flowFile: "/p/flow.ts",
    bundlePath: "/p/b.cjs",
    storage: { type: "config" },
    parents: [{ step: "start", taskId: "1", artifacts: [], frames: [] }],
    frames: [],
    isJoin: false,
    isEnd: false,
    parameterNames: [],
    maxNumSplits: 100,
    env: {},
    decorators: [],
    flowDecorators: [],
    username: "u",
    tags: [],
    namespace: "user:u",
    originRunId: undefined,
    runPlan: "abc",
    ...over,
  };
}

const foreachFrame = (step: string, taskId: string, index: number) => ({
  kind: "foreach" as const,
  step,
  taskId,
  index,
  count: 3,
});

void describe("metaflow task arguments", () => {
  void it("names the plan, run, step, task, attempt and parents; a foreach element gives its split index", () => {
    assert.deepEqual(taskArgs(spec({ frames: [foreachFrame("start", "1", 2)], attempt: 1 })), [
      "--plan",
      "abc",
      "--run-id",
      "7",
      "--step",
      "train",
      "--task-id",
      "5",
      "--attempt",
      "1",
      "--parents",
      "start/1",
      "--split-index",
      "2",
    ]);
  });

  void it("gives no split index to a step further inside the foreach, nor to its join; --recover for the recovery", () => {
    const inner = spec({
      parents: [{ step: "train", taskId: "5", artifacts: [], frames: [] }],
      step: "score",
      frames: [foreachFrame("start", "1", 2)],
    });
    assert.ok(!taskArgs(inner).includes("--split-index"));
    const join = spec({
      step: "join",
      isJoin: true,
      parents: ["5", "6"].map((taskId) => ({ step: "train", taskId, artifacts: [], frames: [] })),
      frames: [foreachFrame("start", "1", 0)],
    });
    assert.deepEqual(taskArgs(join).slice(-2), ["--parents", "train/5,train/6"]);
    assert.equal(
      taskArgs(
        spec({ recover: { storeIn: "e", error: { name: "E", message: "m" }, next: undefined } }),
      ).at(-1),
      "--recover",
    );
  });

  void it("starts with no parents for start", () => {
    const start = spec({
      step: "start",
      taskId: "1",
      parents: [{ step: "_parameters", taskId: "0", artifacts: [], frames: [] }],
    });
    assert.ok(!taskArgs(start).includes("--parents"));
  });
});

void describe("a job array's script", () => {
  const run = (script: string, index: number) =>
    spawnSync("/bin/sh", ["-s"], {
      input: script,
      encoding: "utf8",
      env: { PATH: process.env.PATH, SLURM_ARRAY_JOB_ID: "42", SLURM_ARRAY_TASK_ID: String(index) },
    });
  const script = jobScript({
    labels: { flow: "F", runId: "7", step: "train" },
    command: [
      "printf",
      "%s|",
      "task",
      "--label",
      expandedWord("slurm job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"),
    ],
    size: 2,
    elementArgs: [
      ["--task-id", "5", "--parents", "start/1"],
      ["--task-id", "6", "--parents", 'it\'s "odd" $HOME'],
    ],
  } as Parameters<typeof jobScript>[0]);

  void it("gives each element its own arguments, after the expanded label", () => {
    assert.equal(
      run(script, 0).stdout,
      "task|--label|slurm job 42_0|--task-id|5|--parents|start/1|",
    );
    assert.equal(
      run(script, 1).stdout,
      `task|--label|slurm job 42_1|--task-id|6|--parents|it's "odd" $HOME|`,
    );
  });

  void it("fails an element it has no arguments for, and refuses mismatched lists and unsafe expanded words", () => {
    const r = run(script, 2);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /this job array has no element 2/);
    assert.throws(
      () =>
        jobScript({
          labels: { flow: "F", runId: "7", step: "s" },
          command: ["x"],
          size: 3,
          elementArgs: [[]],
        } as Parameters<typeof jobScript>[0]),
      /a job array of 3 elements needs 3 argument lists, got 1/,
    );
    assert.throws(() => expandedWord("$(rm -rf /)"), /an expanded job word may hold/);
  });
});

void describe("an array's labels", () => {
  void it("carry each element's task id, consecutive ones as ranges, and read back", () => {
    const labels = {
      flow: "F",
      runId: "7",
      step: "train",
      taskIds: ["2", "3", "4", "5", "9", "11", "12"],
    };
    const comment = jobComment(labels);
    assert.equal(comment, "metaflow-ts flow=F run=7 step=train tasks=2-5,9,11-12");
    assert.deepEqual(parseLabels(jobName(labels), comment), labels);
    assert.deepEqual(
      parseLabels(jobName(labels), "metaflow-ts flow=F tasks=$(x)")?.taskIds,
      undefined,
    );
  });
});

void describe("what a job is told about the datastore", () => {
  void it("makes a local datastore's root explicit and passes S3 and service settings, secrets included", () => {
    const dir = tempDir();
    const local = openBackends({
      env: {
        METAFLOW_HOME: path.join(dir, "none"),
        METAFLOW_DATASTORE_SYSROOT_LOCAL: path.join(dir, ".metaflow"),
      },
    });
    try {
      assert.deepEqual(jobEnvironment(local), {
        METAFLOW_DEFAULT_DATASTORE: "local",
        METAFLOW_DEFAULT_METADATA: "local",
        METAFLOW_USER: local.config.user.value,
        METAFLOW_DATASTORE_SYSROOT_LOCAL: path.join(dir, ".metaflow"),
      });
    } finally {
      local.close();
    }
    const remote = openBackends({
      env: {
        METAFLOW_HOME: path.join(dir, "none"),
        METAFLOW_USER: "ann",
        METAFLOW_DEFAULT_DATASTORE: "s3",
        METAFLOW_DATASTORE_SYSROOT_S3: "s3://bucket/mf",
        METAFLOW_S3_ENDPOINT_URL: "http://s3.example:9000",
        AWS_ACCESS_KEY_ID: "AKIA1",
        AWS_SECRET_ACCESS_KEY: "secret-key",
        METAFLOW_DEFAULT_METADATA: "service",
        METAFLOW_SERVICE_URL: "http://md.example:8080",
        METAFLOW_SERVICE_AUTH_TOKEN: "tok",
      },
    });
    try {
      const env = jobEnvironment(remote);
      assert.equal(env.METAFLOW_DATASTORE_SYSROOT_S3, "s3://bucket/mf");
      assert.equal(env.METAFLOW_S3_ENDPOINT_URL, "http://s3.example:9000");
      assert.equal(env.AWS_SECRET_ACCESS_KEY, "secret-key");
      assert.equal(env.METAFLOW_SERVICE_URL, "http://md.example:8080");
      assert.equal(env.METAFLOW_SERVICE_AUTH_TOKEN, "tok");
      assert.equal(env.METAFLOW_USER, "ann");
      assert.equal(env.METAFLOW_DATASTORE_SYSROOT_LOCAL, undefined);
    } finally {
      remote.close();
    }
  });
});

void describe("can the compute nodes reach the datastore", () => {
  const facts = (over: Partial<ReachFacts>): ReachFacts => ({
    datastore: "local",
    metadata: "local",
    localDir: "/tmp/p/.metaflow",
    localDirPrivate: "under /tmp, this machine's temporary directory",
    serviceUrl: undefined,
    s3Endpoint: undefined,
    nodes: ["n1", "n2"],
    allNodesHere: false,
    ...over,
  });

  void it("refuses a local datastore in a temporary directory, unless every node is this machine or the check is off", () => {
    const [problem] = reachProblems(facts({}), "auto");
    assert.match(
      problem!,
      /The local datastore \/tmp\/p\/\.metaflow is under \/tmp, .* which the compute nodes \(n1, n2\) do not share/,
    );
    assert.match(
      problem!,
      /METAFLOW_DATASTORE_SYSROOT_LOCAL .* METAFLOW_SLURM_DATASTORE_CHECK=off/,
    );
    assert.deepEqual(reachProblems(facts({ allNodesHere: true }), "auto"), []);
    assert.equal(reachProblems(facts({ allNodesHere: true }), "strict").length, 1);
    assert.deepEqual(reachProblems(facts({}), "off"), []);
    assert.deepEqual(
      reachProblems(
        facts({ localDirPrivate: undefined, localDir: "/shared/p/.metaflow" }),
        "strict",
      ),
      [],
    );
  });

  void it("refuses local metadata beside S3, and loopback service and S3 URLs", () => {
    const problems = reachProblems(
      facts({
        datastore: "s3",
        metadata: "local",
        localDirPrivate: undefined,
        s3Endpoint: "http://localhost:9000",
      }),
      "strict",
    );
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /The datastore is S3 but the metadata is local/);
    assert.match(
      problems[1]!,
      /METAFLOW_S3_ENDPOINT_URL=http:\/\/localhost:9000 names this machine by a loopback address/,
    );
    const service = reachProblems(
      facts({
        datastore: "s3",
        metadata: "service",
        serviceUrl: "http://[::1]:8080",
        s3Endpoint: "https://s3.example",
      }),
      "strict",
    );
    assert.equal(service.length, 1);
    assert.match(service[0]!, /METAFLOW_SERVICE_URL=http:\/\/\[::1\]:8080/);
  });

  void it("knows a temporary directory as this machine's", () => {
    assert.match(
      privateDirectory(path.join(os.tmpdir(), "x", ".metaflow")) ?? "",
      /under .*temporary directory|tmpfs/,
    );
    assert.match(privateDirectory("/var/tmp/a") ?? "", /under \/var\/tmp/);
  });
});

void describe("the launcher's settings and the @slurm plan", () => {
  const home = () => tempDir();
  void it("reads METAFLOW_SLURM_COMMAND, _OUTPUT_DIR, _DATASTORE_CHECK and _ARRAYS, and refuses bad values by name", () => {
    const s = loadConfig(
      {
        METAFLOW_SLURM_COMMAND: "/opt/node20/bin/node /shared/mf/bin/metaflow.js",
        METAFLOW_SLURM_OUTPUT_DIR: "/shared/slurm-out/",
        METAFLOW_SLURM_DATASTORE_CHECK: "Strict",
        METAFLOW_SLURM_ARRAYS: "false",
      },
      home(),
    ).slurm;
    assert.deepEqual(s.command.value, ["/opt/node20/bin/node", "/shared/mf/bin/metaflow.js"]);
    assert.equal(s.outputDir.value, "/shared/slurm-out");
    assert.equal(s.datastoreCheck.value, "strict");
    assert.equal(s.arrays.value, false);
    const defaults = loadConfig({}, home()).slurm;
    assert.equal(defaults.command.value, undefined);
    assert.equal(defaults.datastoreCheck.value, "auto");
    assert.equal(defaults.arrays.value, true);
    for (const [key, value, message] of [
      ["METAFLOW_SLURM_COMMAND", "node '$HOME/x'", /without quotes or shell characters/],
      ["METAFLOW_SLURM_OUTPUT_DIR", "relative/dir", /must be an absolute directory path/],
      ["METAFLOW_SLURM_DATASTORE_CHECK", "maybe", /must be auto, strict or off, got "maybe"/],
      ["METAFLOW_SLURM_ARRAYS", "sometimes", /must be true or false/],
    ] as const) {
      assert.throws(
        () => loadConfig({ [key]: value }, home()),
        (err: unknown) =>
          err instanceof ConfigError && err.key === key && message.test(err.message),
      );
    }
  });

  void it("@slurm picks the slurm launcher with its options, the time as written", () => {
    const def = slurm.definition;
    const options = def.parse!(
      { partition: "gpu", time: "02:00:00", extraArgs: "--exclusive" },
      "cli",
    );
    const plan = defaultPlan();
    def.plan!(options, plan, {
      step: "train",
      fromCli: true,
      flow: { name: "F", decorators: [] },
      decorators: [],
    });
    assert.deepEqual(plan.launcher, {
      kind: "slurm",
      options: { partition: "gpu", time: "02:00:00", extraArgs: ["--exclusive"] },
    });
    assert.throws(
      () => def.parse!({ partition: 3 }, "code"),
      /@slurm\.partition must be a string naming a partition/,
    );
  });
});
