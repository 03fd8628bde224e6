/**
 * The metadata service against a real PostgreSQL 15 cluster and a real `metaflow service` process:
 * the provider contract (shared with LocalMetadata), auth, input validation, heartbeats, a
 * PostgreSQL and a service restart under load, and two users in separate processes.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { LocalMetadata } from "../src/metadata/local.js";
import { MetadataServiceError, ServiceMetadata } from "../src/metadata/service.js";
import { SystemTagError } from "../src/metadata/tags.js";
import type { MetadataProvider, RunRecord } from "../src/metadata/types.js";
import { migrate } from "../src/service/schema.js";
import {
  freePort,
  postgresAvailability,
  startPostgres,
  type TestPostgres,
} from "./helpers/postgres.js";
import { startServiceProcess, type ServiceProcess } from "./helpers/service.js";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const userScript = path.join(here, "helpers/service-user.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function record(flow: string, extra: Partial<RunRecord> = {}): Omit<RunRecord, "runId"> {
  return {
    flow,
    user: "tester",
    createdAt: Date.now(),
    parameters: { alpha: 0.1 },
    parameterRefs: [
      { name: "alpha", hash: "ab".repeat(32), size: 3, encoding: "json", type: "number" },
    ],
    systemTags: ["user:tester", "runtime:dev"],
    tags: ["t1"],
    codePackage: "cd".repeat(32),
    flowFile: "flows/x.ts",
    className: flow,
    ...extra,
  };
}

const start = (attempt: number) => ({
  attempt,
  startedAt: Date.now(),
  pid: 42,
  parents: [],
  frames: [],
});
const end = (attempt: number, status: "completed" | "failed") => ({
  attempt,
  finishedAt: Date.now(),
  status,
  artifacts: [],
});

/** Behaviours every provider shares; run against LocalMetadata and the service alike. */
function providerContract(name: string, make: () => Promise<MetadataProvider>): void {
  void describe(`provider contract: ${name}`, () => {
    let md: MetadataProvider;
    before(async () => {
      md = await make();
    });

    void it("gives 20 concurrent newRun calls 20 different ids, listed newest first", async () => {
      const flow = "ConcurrentFlow";
      const ids = await Promise.all(Array.from({ length: 20 }, () => md.newRun(record(flow))));
      assert.equal(new Set(ids).size, 20);
      const listed = await md.listRuns(flow);
      assert.deepEqual([...listed].sort(), [...ids].sort());
      const numeric = listed.map(Number);
      assert.deepEqual(
        numeric,
        [...numeric].sort((a, b) => b - a),
        "newest (highest id) first",
      );
      const later = await md.newRun(record(flow));
      assert.equal((await md.listRuns(flow))[0], later);
      assert.ok((await md.listFlows()).includes(flow));
    });

    void it("records a run, its attempts, and how it ended", async () => {
      const flow = "ContractFlow";
      const runId = await md.newRun(record(flow));
      const got = await md.getRun(flow, runId);
      assert.equal(got?.runId, runId);
      assert.equal(got?.user, "tester");
      assert.deepEqual(got?.tags, ["t1"]);
      assert.deepEqual(got?.parameters, { alpha: 0.1 });
      assert.equal(await md.getRunEnd(flow, runId), undefined);

      await md.startAttempt(flow, runId, "start", "1", start(0));
      await md.endAttempt(flow, runId, "start", "1", end(0, "failed"));
      await md.startAttempt(flow, runId, "start", "1", start(1));
      await md.endAttempt(flow, runId, "start", "1", {
        ...end(1, "completed"),
        transition: { kind: "linear", to: "end" },
      });
      for (const t of ["2", "10", "3"]) await md.startAttempt(flow, runId, "end", t, start(0));
      const task = await md.getTask(flow, runId, "start", "1");
      assert.equal(task?.attempts.length, 2);
      assert.equal(task?.attempts[0]?.end?.status, "failed");
      assert.equal(task?.attempts[1]?.end?.status, "completed");
      assert.deepEqual(task?.attempts[1]?.end?.transition, { kind: "linear", to: "end" });
      assert.equal((await md.getTask(flow, runId, "end", "3"))?.attempts[0]?.end, undefined);
      assert.deepEqual((await md.listSteps(flow, runId)).sort(), ["end", "start"]);
      assert.deepEqual(await md.listTasks(flow, runId, "end"), ["2", "3", "10"]);

      await md.finishRun(flow, runId, { status: "completed", finishedAt: Date.now() });
      assert.equal((await md.getRunEnd(flow, runId))?.status, "completed");
    });

    void it("answers undefined or empty for things that do not exist", async () => {
      assert.equal(await md.getRun("ContractFlow", "1"), undefined);
      assert.equal(await md.getRunEnd("ContractFlow", "1"), undefined);
      assert.equal(await md.getTask("ContractFlow", "1", "start", "1"), undefined);
      assert.deepEqual(await md.listRuns("NoSuchFlow"), []);
      assert.deepEqual(await md.listSteps("ContractFlow", "1"), []);
    });

    void it("keeps every one of 20 concurrent tag edits and refuses to remove a system tag", async () => {
      const flow = "TagFlow";
      const runId = await md.newRun(record(flow));
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => md.updateTags(flow, runId, { add: [`tag-${i}`] })),
      );
      const tags = await md.getTags(flow, runId);
      assert.equal(tags.length, 21);
      for (let i = 0; i < 20; i++) assert.ok(tags.includes(`tag-${i}`), `tag-${i} kept`);
      assert.deepEqual(
        await md.updateTags(flow, runId, { remove: ["t1", "tag-0"], add: ["new"] }),
        [...tags.filter((t) => t !== "t1" && t !== "tag-0"), "new"],
      );
      assert.deepEqual((await md.getRun(flow, runId))?.tags, await md.getTags(flow, runId));
      await assert.rejects(md.updateTags(flow, runId, { remove: ["user:tester"] }), SystemTagError);
      // Quotes and SQL in a tag are just text.
      const sneaky = `x'); DROP TABLE runs; --"`;
      assert.ok((await md.updateTags(flow, runId, { add: [sneaky] })).includes(sneaky));
    });
  });
}

providerContract(
  "local",
  async () => new LocalMetadata(await fs.mkdtemp(path.join(os.tmpdir(), "mf-local-md-"))),
);

const availability = postgresAvailability();

void describe(
  "metadata service",
  { skip: "skip" in availability ? availability.skip : false },
  () => {
    let db: TestPostgres;
    let service: ServiceProcess;
    let token: string;
    const providers: ServiceMetadata[] = [];
    const provider = (opts: { heartbeatIntervalMs?: number; retryTimeoutMs?: number } = {}) => {
      const p = new ServiceMetadata({ url: service.url, token, ...opts });
      providers.push(p);
      return p;
    };
    const api = (p: string, init: RequestInit = {}, auth = true) =>
      fetch(`${service.url}${p}`, {
        ...init,
        headers: {
          ...(auth ? { authorization: `Bearer ${token}` } : {}),
          ...(init.headers as Record<string, string>),
        },
      });

    before(async () => {
      if (!("bin" in availability)) return;
      db = await startPostgres(availability.bin);
      token = randomBytes(24).toString("hex");
      service = await startServiceProcess({
        databaseUrl: db.url,
        token,
        heartbeatTimeoutSeconds: 2,
      });
    });

    after(async () => {
      for (const p of providers) p.close();
      await service?.stop();
      await db?.destroy();
    });

    providerContract("service", async () => provider({ heartbeatIntervalMs: 300 }));

    void describe("auth", () => {
      void it("serves the health check without a token", async () => {
        const res = await api("/healthz", {}, false);
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { status: "ok", database: "up" });
      });

      void it("answers 401 to a missing or wrong token, before anything else", async () => {
        for (const headers of [
          {},
          { authorization: "Bearer wrong-token-wrong-token" },
          { authorization: token },
        ] as Array<Record<string, string>>) {
          const res = await fetch(`${service.url}/api/v1/flows`, { headers });
          assert.equal(res.status, 401);
          assert.equal(
            ((await res.json()) as { error: { code: string } }).error.code,
            "unauthorized",
          );
        }
        // Unknown paths say 401 too, so they reveal nothing to a caller without a token.
        assert.equal((await fetch(`${service.url}/api/v1/nope`)).status, 401);
        assert.equal((await api("/api/v1/flows")).status, 200);
      });

      void it("fails at once with a clear error when the provider's token is wrong", async () => {
        const bad = new ServiceMetadata({ url: service.url, token: "not-the-token-at-all" });
        await assert.rejects(
          bad.listFlows(),
          (err: MetadataServiceError) =>
            err.status === 401 && /METAFLOW_SERVICE_AUTH_TOKEN/.test(err.message),
        );
      });
    });

    void describe("input validation", () => {
      const errorOf = async (res: Response) =>
        ((await res.json()) as { error: { code: string; message: string } }).error;
      const json = (body: unknown, method = "POST"): RequestInit => ({
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });

      void it("rejects bad names in the path with a 400 naming the field", async () => {
        const cases: Array<[string, RegExp]> = [
          ["/api/v1/flows/bad%20flow/runs", /flow name .*"bad flow"/],
          [`/api/v1/flows/${encodeURIComponent("F'; DROP TABLE runs;--")}/runs`, /flow name/],
          ["/api/v1/flows/F/runs/abc", /run id .*"abc"/],
          ["/api/v1/flows/F/runs/1/steps/9step/tasks", /step name/],
          ["/api/v1/flows/F/runs/1/steps/s/tasks/a%2Fb", /task id/],
          ["/api/v1/flows/F/runs/%E0%A4%A", /path/],
        ];
        for (const [p, message] of cases) {
          const res = await api(p);
          assert.equal(res.status, 400, p);
          const e = await errorOf(res);
          assert.equal(e.code, "invalid-input");
          assert.match(e.message, message);
        }
      });

      void it("rejects bad bodies with a 4xx naming the field", async () => {
        const cases: Array<[string, RequestInit, number, RegExp]> = [
          [
            "/api/v1/flows/F/runs",
            json({ ...record("F"), createdAt: "yesterday" }),
            400,
            /body\.createdAt must be an integer/,
          ],
          [
            "/api/v1/flows/F/runs",
            json({ ...record("F"), tags: ["ok", "x".repeat(600)] }),
            400,
            /body\.tags\[1\]/,
          ],
          [
            "/api/v1/flows/F/runs",
            json({ ...record("F"), tags: ["a\u0007b"] }),
            400,
            /body\.tags\[0\]/,
          ],
          [
            "/api/v1/flows/F/runs",
            json({ ...record("F"), flow: "Other" }),
            400,
            /body\.flow must match/,
          ],
          ["/api/v1/flows/F/runs", json([1, 2]), 400, /body must be a JSON object/],
          [
            "/api/v1/flows/F/runs",
            { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" },
            400,
            /not valid JSON/,
          ],
          [
            "/api/v1/flows/F/runs",
            { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" },
            415,
            /application\/json/,
          ],
          [
            "/api/v1/flows/F/runs/1/end",
            json({ status: "done", finishedAt: 1 }, "PUT"),
            400,
            /body\.status must be one of completed, failed/,
          ],
          [
            "/api/v1/flows/F/runs/1/steps/s/tasks/1/attempts/2/start",
            json(start(1), "PUT"),
            400,
            /body\.attempt must match/,
          ],
          [
            "/api/v1/flows/F/runs/1/steps/s/tasks/1/attempts/99999/start",
            json(start(1), "PUT"),
            400,
            /attempt must be an integer/,
          ],
          ["/api/v1/flows/F/runs/1/tags", json({ add: "one" }), 400, /body\.add must be an array/],
          ["/api/v1/flows/F/runs", { method: "DELETE" }, 405, /not allowed/],
          ["/api/v1/nothing/here", {}, 404, /No such endpoint/],
        ];
        for (const [p, init, status, message] of cases) {
          const res = await api(p, init);
          const e = await errorOf(res);
          assert.equal(res.status, status, `${p}: ${e.message}`);
          assert.match(e.message, message);
        }
      });

      void it("answers 413 to a body over 1 MiB", async () => {
        const big = { ...record("F"), parameters: { blob: "x".repeat(1_100_000) } };
        const res = await api("/api/v1/flows/F/runs", json(big));
        assert.equal(res.status, 413);
        assert.equal((await errorOf(res)).code, "body-too-large");
        assert.equal((await api("/api/v1/flows")).status, 200, "the service still answers");
      });

      void it("surfaces a 4xx through the provider at once, naming the bad value", async () => {
        const md = provider();
        const t0 = Date.now();
        await assert.rejects(
          md.listRuns("no such flow"),
          (err: MetadataServiceError) =>
            err.status === 400 && /flow name .*"no such flow"/.test(err.message),
        );
        await assert.rejects(
          md.startAttempt("F", "123", "start", "1", start(0)),
          (err: MetadataServiceError) =>
            err.status === 404 && /F\/123 does not exist/.test(err.message),
        );
        assert.ok(Date.now() - t0 < 2000, "4xx answers are not retried");
      });
    });

    void it("shows a run whose process died (heartbeats stopped) as failed", async () => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", userScript, "hang", "HeartbeatFlow"],
        {
          env: {
            ...process.env,
            METAFLOW_SERVICE_URL: service.url,
            METAFLOW_SERVICE_AUTH_TOKEN: token,
            HEARTBEAT_MS: "300",
          },
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      const runId = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /"runId":"(\d+)"/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once("exit", (code) => reject(new Error(`hang script exited with ${code}`)));
      });
      const md = provider();
      await sleep(3000); // longer than the 2 s threshold: the heartbeats keep it running
      assert.equal((await md.getRunStatus("HeartbeatFlow", runId))?.status, "running");
      assert.equal(await md.getRunEnd("HeartbeatFlow", runId), undefined);
      child.kill("SIGKILL");
      await sleep(3000);
      const status = await md.getRunStatus("HeartbeatFlow", runId);
      assert.equal(status?.status, "failed");
      assert.equal(status?.heartbeatExpired, true);
      const runEnd = await md.getRunEnd("HeartbeatFlow", runId);
      assert.equal(runEnd?.status, "failed");
      assert.equal(runEnd?.error?.name, "HeartbeatTimeout");
      assert.match(runEnd?.error?.message ?? "", /no heartbeat since/);
    });

    void it("a run an orchestrator drives (no heartbeats) stays running past the heartbeat timeout; a plain run fails", async () => {
      // Created through the API, so no client sends heartbeats for either run.
      const create = async (extra: Partial<RunRecord>) => {
        const res = await api("/api/v1/flows/DeployedFlow/runs", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(record("DeployedFlow", extra)),
        });
        assert.equal(res.status, 201);
        return ((await res.json()) as { runId: string }).runId;
      };
      const deployed = await create({ orchestrator: "step-functions" });
      const plain = await create({});
      const view = async (runId: string) =>
        (await (await api(`/api/v1/flows/DeployedFlow/runs/${runId}`)).json()) as {
          status: string;
          heartbeatExpired: boolean;
        };
      assert.equal((await view(plain)).status, "running", "within the timeout both are running");
      await sleep(3000); // longer than the service's 2 s threshold
      assert.deepEqual(await view(plain), { ...(await view(plain)), status: "failed", heartbeatExpired: true });
      assert.deepEqual(await view(deployed), { ...(await view(deployed)), status: "running", heartbeatExpired: false });
      const md = provider();
      assert.equal((await md.getRunStatus("DeployedFlow", deployed))?.status, "running");
      assert.equal(await md.getRunEnd("DeployedFlow", deployed), undefined);
      assert.equal((await md.getRunEnd("DeployedFlow", plain))?.error?.name, "HeartbeatTimeout");
      // The orchestrator ends its run itself, like any other.
      await md.finishRun("DeployedFlow", deployed, { status: "completed", finishedAt: Date.now() });
      assert.equal((await view(deployed)).status, "completed");

      const bad = await api("/api/v1/flows/DeployedFlow/runs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...record("DeployedFlow"), orchestrator: null }),
      });
      assert.equal(bad.status, 400, "a null orchestrator would exempt a run from the timeout");
      assert.match(
        ((await bad.json()) as { error: { message: string } }).error.message,
        /^body\.orchestrator must be a string, got null$/,
      );
    });

    void it("rides out a PostgreSQL restart in the middle of a run", async () => {
      const md = provider({ heartbeatIntervalMs: 300 });
      const flow = "RestartFlow";
      const runId = await md.newRun(record(flow));
      const tasks = 40;
      let restarted: Promise<void> | undefined;
      for (let i = 1; i <= tasks; i++) {
        if (i === 10) restarted = db.restart(2000);
        await md.startAttempt(flow, runId, "work", String(i), start(0));
        await md.endAttempt(flow, runId, "work", String(i), end(0, "completed"));
        await sleep(50);
      }
      await restarted;
      await md.finishRun(flow, runId, { status: "completed", finishedAt: Date.now() });
      assert.equal((await md.listTasks(flow, runId, "work")).length, tasks);
      assert.equal((await md.getRunEnd(flow, runId))?.status, "completed");
      assert.match(
        service.output(),
        / 503 database-unavailable /,
        "the service answered 503 while the database was down",
      );
      assert.equal(service.child.exitCode, null, "the service did not crash");
    });

    void it("rides out a service restart, and stops cleanly on SIGTERM", async () => {
      const md = provider({ heartbeatIntervalMs: 300 });
      const fixedPort = await freePort();
      const fixed = await startServiceProcess({ databaseUrl: db.url, token, port: fixedPort });
      const movable = new ServiceMetadata({ url: fixed.url, token });
      const runId = await movable.newRun(record("ServiceRestartFlow"));
      assert.equal(await fixed.stop(), 0, "SIGTERM stops the service with exit code 0");
      const pending = movable.startAttempt("ServiceRestartFlow", runId, "start", "1", start(0));
      await sleep(1500);
      const again = await startServiceProcess({ databaseUrl: db.url, token, port: fixedPort });
      try {
        await pending;
        assert.equal(
          (await md.getTask("ServiceRestartFlow", runId, "start", "1"))?.attempts.length,
          1,
        );
        assert.match(again.output(), /schema up to date/);
      } finally {
        movable.close();
        await again.stop();
      }
    });

    void it("lets two users in separate processes see each other's runs", async () => {
      const env = (user: string) => ({
        ...process.env,
        METAFLOW_USER: user,
        METAFLOW_SERVICE_URL: service.url,
        METAFLOW_SERVICE_AUTH_TOKEN: token,
      });
      const script = (user: string, mode: string) =>
        run(process.execPath, ["--import", "tsx", userScript, mode, "SharedFlow"], {
          env: env(user),
        });
      await Promise.all([script("alice", "run"), script("bob", "run")]);
      for (const viewer of ["alice", "bob"]) {
        const { stdout } = await script(viewer, "list");
        const { users } = JSON.parse(stdout) as { users: string[] };
        assert.deepEqual([...users].sort(), ["alice", "bob"], `${viewer} sees both runs`);
      }
    });

    void it("never writes the token or the database password to its logs", () => {
      const logs = service.output();
      assert.ok(logs.length > 0);
      assert.ok(!logs.includes(token), "token not logged");
      assert.ok(!logs.includes(db.password), "database password not logged");
      assert.match(logs, /postgres:\*\*\*@/);
    });

    void it("refuses to start with a wrong database password, without printing it", async () => {
      const wrong = "wrong-password-" + randomBytes(6).toString("hex");
      const url = db.url.replace(`:${db.password}@`, `:${wrong}@`);
      await assert.rejects(startServiceProcess({ databaseUrl: url, token }), (err: Error) => {
        assert.match(err.message, /exited with 1/);
        assert.match(
          err.message,
          /Cannot prepare the metadata database postgres:\/\/postgres:\*\*\*@/,
        );
        assert.match(err.message, /password authentication failed/);
        assert.ok(!err.message.includes(wrong), "password not printed");
        return true;
      });
    });

    void it("migrates once when two instances start at the same time", async () => {
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      await admin.query("CREATE DATABASE migrate_race");
      await admin.end();
      const url = db.url.replace(/\/metaflow$/, "/migrate_race");
      const pools = [
        new pg.Pool({ connectionString: url }),
        new pg.Pool({ connectionString: url }),
      ];
      try {
        const applied = await Promise.all(pools.map((p) => migrate(p)));
        assert.deepEqual(applied.flat(), [1, 2], "exactly one instance applied each migration");
        const { rows } = await pools[0]!.query("SELECT version FROM schema_migrations ORDER BY version");
        assert.deepEqual(rows, [{ version: 1 }, { version: 2 }]);
        assert.deepEqual(await migrate(pools[1]!), []);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    });
  },
);
