/**
 * The team setup's security and limits, against a real PostgreSQL 15 cluster and real
 * `metaflow service` processes: ended records cannot be rewritten, per-user tokens decide who a
 * run belongs to, system tags cannot be impersonated, names follow one rule everywhere, and bodies
 * that used to crash (8,000 artifacts, 5,000 levels of nesting, absurd timestamps) are handled.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import * as arrow from "apache-arrow";
import { tableFromArrays } from "apache-arrow";
import { useArrow } from "../src/datastore/arrow.js";
import { artifactRef, ContentStore } from "../src/datastore/cas.js";
import { LocalStorage } from "../src/datastore/local.js";
import type { ArtifactRef } from "../src/datastore/types.js";
import { RecordConflictError } from "../src/errors.js";
import { nameProblem } from "../src/graph/names.js";
import { LocalMetadata } from "../src/metadata/local.js";
import { MetadataServiceError, ServiceMetadata } from "../src/metadata/service.js";
import { InvalidTagError } from "../src/metadata/tags.js";
import type { AttemptEnd, MetadataProvider, RunRecord } from "../src/metadata/types.js";
import { postgresAvailability, startPostgres, type TestPostgres } from "./helpers/postgres.js";
import { Project } from "./helpers/project.js";
import { startServiceProcess, type ServiceProcess } from "./helpers/service.js";

const exec = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function record(flow: string, extra: Partial<RunRecord> = {}): Omit<RunRecord, "runId"> {
  return {
    flow,
    user: "tester",
    createdAt: Date.now(),
    parameters: {},
    parameterRefs: [],
    systemTags: ["user:tester", "runtime:dev"],
    tags: [],
    codePackage: "cd".repeat(32),
    flowFile: "flows/x.ts",
    className: flow,
    ...extra,
  };
}
const start = (attempt = 0) => ({
  attempt,
  startedAt: Date.now(),
  pid: 42,
  parents: [],
  frames: [],
});
const ref = (name: string, hash = "ab".repeat(32)) => ({
  name,
  hash,
  size: 3,
  encoding: "json" as const,
  type: "number",
});
const end = (artifacts: ArtifactRef[] = [ref("x")], status: "completed" | "failed" = "completed"): AttemptEnd => ({
  attempt: 0,
  finishedAt: Date.now(),
  status,
  artifacts,
});

/** The local provider follows the same rule: ended attempts and runs are written once. */
void describe("local metadata: ended records are immutable", () => {
  let md: MetadataProvider;
  before(async () => {
    md = new LocalMetadata(await fs.mkdtemp(path.join(os.tmpdir(), "mf-immutable-")));
  });

  void it("an identical rewrite is accepted, a conflicting one refused; tags stay editable", async () => {
    const runId = await md.newRun(record("LocalFlow"));
    await md.startAttempt("LocalFlow", runId, "start", "1", start());
    const first = end();
    await md.endAttempt("LocalFlow", runId, "start", "1", first);
    await md.endAttempt("LocalFlow", runId, "start", "1", first);
    await assert.rejects(
      md.endAttempt("LocalFlow", runId, "start", "1", end([ref("x", "cd".repeat(32))])),
      RecordConflictError,
    );
    const task = await md.getTask("LocalFlow", runId, "start", "1");
    assert.equal(task?.attempts[0]?.end?.artifacts[0]?.hash, "ab".repeat(32));

    const runEnd = { status: "completed" as const, finishedAt: Date.now() };
    await md.finishRun("LocalFlow", runId, runEnd);
    await md.finishRun("LocalFlow", runId, runEnd);
    await assert.rejects(
      md.finishRun("LocalFlow", runId, { status: "failed", finishedAt: Date.now() }),
      RecordConflictError,
    );
    assert.equal((await md.getRunEnd("LocalFlow", runId))?.status, "completed");
    assert.deepEqual(await md.updateTags("LocalFlow", runId, { add: ["reviewed"] }), ["reviewed"]);
  });
});

const availability = postgresAvailability();

void describe(
  "metadata service security",
  { skip: "skip" in availability ? availability.skip : false },
  () => {
    let db: TestPostgres;
    let service: ServiceProcess;
    let shared: string;
    const providers: ServiceMetadata[] = [];
    const provider = (token = shared, url = service.url) => {
      const p = new ServiceMetadata({ url, token, retryTimeoutMs: 2000 });
      providers.push(p);
      return p;
    };
    const api = (p: string, init: RequestInit & { token?: string } = {}) =>
      fetch(`${service.url}${p}`, {
        ...init,
        headers: {
          authorization: `Bearer ${init.token ?? shared}`,
          "content-type": "application/json",
          ...(init.headers as Record<string, string>),
        },
      });
    const put = (p: string, body: unknown, token?: string) =>
      api(p, { method: "PUT", body: JSON.stringify(body), ...(token ? { token } : {}) });
    const post = (p: string, body: unknown, token?: string) =>
      api(p, { method: "POST", body: JSON.stringify(body), ...(token ? { token } : {}) });
    const errorOf = async (res: Response) =>
      ((await res.json()) as { error: { code: string; message: string } }).error;
    const tokenCli = (...args: string[]) =>
      exec(
        process.execPath,
        ["--import", "tsx", path.join(repo, "src/cli/main.ts"), "service", "token", ...args],
        {
          cwd: repo,
          env: { ...process.env, METAFLOW_SERVICE_DATABASE_URL: db.url },
        },
      );

    before(async () => {
      if (!("bin" in availability)) return;
      db = await startPostgres(availability.bin);
      shared = randomBytes(24).toString("hex");
      service = await startServiceProcess({ databaseUrl: db.url, token: shared });
    });
    after(async () => {
      for (const p of providers) p.close();
      await service?.stop();
      await db?.destroy();
    });

    void describe("ended records are immutable", () => {
      void it("an attempt's end: identical retry 204, conflicting rewrite 409, the record unchanged", async () => {
        const md = provider();
        const runId = await md.newRun(record("ImmutableFlow"));
        await md.startAttempt("ImmutableFlow", runId, "start", "1", start());
        const first = end();
        await md.endAttempt("ImmutableFlow", runId, "start", "1", first);
        const base = `/api/v1/flows/ImmutableFlow/runs/${runId}/steps/start/tasks/1/attempts/0`;
        assert.equal(
          (await put(`${base}/end`, first)).status,
          204,
          "an identical retry is idempotent",
        );
        const forged = await put(`${base}/end`, {
          ...first,
          artifacts: [ref("x", "ef".repeat(32))],
        });
        assert.equal(forged.status, 409);
        assert.equal((await errorOf(forged)).code, "immutable");
        await assert.rejects(
          md.endAttempt("ImmutableFlow", runId, "start", "1", end([ref("x", "01".repeat(32))])),
          RecordConflictError,
        );
        assert.equal(
          (await put(`${base}/start`, { ...start(), pid: 7 })).status,
          409,
          "nor its start, once it has ended",
        );
        const task = await md.getTask("ImmutableFlow", runId, "start", "1");
        assert.equal(task?.attempts[0]?.end?.artifacts[0]?.hash, "ab".repeat(32));
        assert.equal(task?.attempts[0]?.start.pid, 42);
      });

      void it("a run's end: a completed run cannot be marked failed; tags remain editable", async () => {
        const md = provider();
        const runId = await md.newRun(record("ImmutableFlow"));
        const done = { status: "completed" as const, finishedAt: Date.now() };
        await md.finishRun("ImmutableFlow", runId, done);
        assert.equal(
          (await put(`/api/v1/flows/ImmutableFlow/runs/${runId}/end`, done)).status,
          204,
        );
        const res = await put(`/api/v1/flows/ImmutableFlow/runs/${runId}/end`, {
          status: "failed",
          finishedAt: Date.now(),
        });
        assert.equal(res.status, 409);
        assert.match((await errorOf(res)).message, /already ended/);
        await assert.rejects(
          md.finishRun("ImmutableFlow", runId, { status: "failed", finishedAt: Date.now() }),
          RecordConflictError,
        );
        assert.equal((await md.getRunEnd("ImmutableFlow", runId))?.status, "completed");
        const late = await put(
          `/api/v1/flows/ImmutableFlow/runs/${runId}/steps/end/tasks/9/attempts/0/start`,
          start(),
        );
        assert.equal(late.status, 409, "no new task is added to an ended run");
        assert.deepEqual(await md.updateTags("ImmutableFlow", runId, { add: ["audited"] }), [
          "audited",
        ]);
      });
    });

    void describe("names and sizes", () => {
      void it("the service refuses exactly the names `metaflow check` refuses", async () => {
        const md = provider();
        const runId = await md.newRun(record("NamesFlow"));
        const names = [
          "train",
          "_private",
          "x".repeat(128),
          "x".repeat(129),
          "$load",
          "läden",
          "9lives",
        ];
        for (const name of names) {
          const res = await put(
            `/api/v1/flows/NamesFlow/runs/${runId}/steps/${encodeURIComponent(name)}/tasks/1/attempts/0/start`,
            start(),
          );
          const refused = res.status === 400;
          assert.equal(
            refused,
            nameProblem(name) !== undefined,
            `${name.slice(0, 20)}: HTTP ${res.status}`,
          );
        }
        const longArtifact = await put(
          `/api/v1/flows/NamesFlow/runs/${runId}/steps/train/tasks/1/attempts/0/end`,
          end([ref("a".repeat(1025))]),
        );
        assert.equal(longArtifact.status, 400);
        assert.match((await errorOf(longArtifact)).message, /artifacts\[0\]\.name .*1024/);
      });

      void it("an attempt with 8,000 artifacts (a body over 1 MiB) is recorded in batches", async () => {
        const md = provider();
        const runId = await md.newRun(record("ManyFlow"));
        await md.startAttempt("ManyFlow", runId, "start", "1", start());
        const artifacts = Array.from({ length: 8000 }, (_, i) =>
          ref(
            `artifact_number_${String(i).padStart(5, "0")}_${"p".repeat(40)}`,
            createHash("sha256").update(String(i)).digest("hex"),
          ),
        );
        const body = end(artifacts);
        assert.ok(
          JSON.stringify(body).length > 1024 * 1024,
          "the body alone is over the service's limit",
        );
        assert.equal(
          (
            await put(
              `/api/v1/flows/ManyFlow/runs/${runId}/steps/start/tasks/1/attempts/0/end`,
              body,
            )
          ).status,
          413,
        );
        await md.endAttempt("ManyFlow", runId, "start", "1", body);
        await md.endAttempt("ManyFlow", runId, "start", "1", body); // a retry is idempotent
        const task = await md.getTask("ManyFlow", runId, "start", "1");
        assert.deepEqual(task?.attempts[0]?.end?.artifacts, artifacts);
        await assert.rejects(
          md.endAttempt("ManyFlow", runId, "start", "1", end(artifacts.slice(1))),
          RecordConflictError,
        );
      });

      void it("5,000 levels of nesting and absurd timestamps get 400, not 500", async () => {
        // Built as text: JSON.stringify itself overflows the stack at this depth.
        const nested = `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`;
        const body = JSON.stringify({
          ...record("LimitsFlow"),
          parameters: { p: "NESTED" },
        }).replace('"NESTED"', nested);
        const deep = await api("/api/v1/flows/LimitsFlow/runs", { method: "POST", body });
        assert.equal(deep.status, 400);
        assert.match((await errorOf(deep)).message, /nest/);
        for (const createdAt of [1, -5, Date.now() + 10 * 365 * 86_400_000]) {
          const res = await post("/api/v1/flows/LimitsFlow/runs", {
            ...record("LimitsFlow"),
            createdAt,
          });
          assert.equal(res.status, 400, String(createdAt));
          assert.match((await errorOf(res)).message, /body\.createdAt/);
        }
        const runId = await provider().newRun(record("LimitsFlow"));
        const res = await put(
          `/api/v1/flows/LimitsFlow/runs/${runId}/steps/start/tasks/1/attempts/0/start`,
          { ...start(), startedAt: 1 },
        );
        assert.equal(res.status, 400);
        assert.match((await errorOf(res)).message, /body\.startedAt/);
      });
    });

    void describe("artifact refs", () => {
      void it("refs the runtime writes (v8, buffer, typed, bytes with a serializer and summary) are accepted as sent", async () => {
        const dir = await fs.mkdtemp(path.join(os.tmpdir(), "mf-refs-"));
        try {
          const cas = new ContentStore(new LocalStorage(dir));
          // The service process loads its own copy of apache-arrow; this one must match the tests'.
          useArrow(arrow);
          const values: Record<string, unknown> = {
            n: 3,
            buf: Buffer.from("abc"),
            floats: Float64Array.from([1, 2]),
            map: new Map([["k", 1]]),
            table: tableFromArrays({ x: Float64Array.from([1, 2, 3]) }),
          };
          const refs = await Promise.all(
            Object.entries(values).map(async ([k, value]) => artifactRef(k, await cas.putValue(value))),
          );
          assert.deepEqual(
            refs.map((r) => r.encoding),
            ["v8", "buffer", "typed", "v8", "bytes"],
          );
          assert.equal(refs[4]?.serializer, "arrow");
          assert.ok(refs[4]?.summary, "the Arrow ref carries a summary");
          const md = provider();
          const runId = await md.newRun(record("RefsFlow", { parameterRefs: refs }));
          await md.startAttempt("RefsFlow", runId, "start", "1", start());
          await md.endAttempt("RefsFlow", runId, "start", "1", end(refs));
          const task = await md.getTask("RefsFlow", runId, "start", "1");
          assert.deepEqual(task?.attempts[0]?.end?.artifacts, refs);
        } finally {
          await fs.rm(dir, { recursive: true, force: true });
        }
      });

      void it("a ref with a bad encoding, hash, serializer, summary or typedArray is a 400 naming the field and value", async () => {
        const md = provider();
        const runId = await md.newRun(record("RefsFlow"));
        await md.startAttempt("RefsFlow", runId, "start", "1", start());
        const url = `/api/v1/flows/RefsFlow/runs/${runId}/steps/start/tasks/1/attempts/0/end`;
        const bad: Array<[Record<string, unknown>, RegExp]> = [
          [{ encoding: "pickle" }, /artifacts\[0\]\.encoding must be one of buffer, typed, v8, json, bytes, got "pickle"/],
          [{ encoding: 7 }, /artifacts\[0\]\.encoding .*got 7$/],
          [{ hash: "ab" }, /artifacts\[0\]\.hash must be a sha256 hash .*got "ab"/],
          [{ hash: "AB".repeat(32) }, /artifacts\[0\]\.hash .*got "ABAB/],
          [{ hash: "ab".repeat(33) }, /artifacts\[0\]\.hash /],
          [{ encoding: "bytes" }, /artifacts\[0\]\.serializer must name the serializer .*"bytes", got none/],
          [{ encoding: "bytes", serializer: "-arrow" }, /artifacts\[0\]\.serializer must be 1 to 100 .*got "-arrow"/],
          [{ serializer: "a b" }, /artifacts\[0\]\.serializer .*got "a b"/],
          [{ serializer: 5 }, /artifacts\[0\]\.serializer .*got 5$/],
          [{ summary: [1, 2] }, /artifacts\[0\]\.summary must be a JSON object, got an array/],
          [{ summary: "rows: 3" }, /artifacts\[0\]\.summary must be a JSON object, got "rows: 3"/],
          [{ summary: { big: "x".repeat(17_000) } }, /artifacts\[0\]\.summary must be at most 16384 characters as JSON, got 17010/],
          [{ encoding: "typed", typedArray: 64 }, /artifacts\[0\]\.typedArray must be a string, got 64$/],
        ];
        for (const [change, message] of bad) {
          const res = await put(url, end([{ ...ref("x"), ...change } as never]));
          assert.equal(res.status, 400, JSON.stringify(change).slice(0, 60));
          assert.match((await errorOf(res)).message, message);
        }
        const param = await post("/api/v1/flows/RefsFlow/runs", {
          ...record("RefsFlow"),
          parameterRefs: [{ ...ref("alpha"), encoding: "yaml" }],
        });
        assert.equal(param.status, 400, "parameter refs follow the same rule");
        assert.match((await errorOf(param)).message, /body\.parameterRefs\[0\]\.encoding .*"yaml"/);
        const batch = await put(`${url.slice(0, -"/end".length)}/artifacts/0`, {
          artifacts: [{ ...ref("x"), hash: "zz".repeat(32) }],
        });
        assert.equal(batch.status, 400, "and so do artifact batches");
        assert.match((await errorOf(batch)).message, /body\.artifacts\[0\]\.hash .*"zzzz/);
        const task = await md.getTask("RefsFlow", runId, "start", "1");
        assert.equal(task?.attempts[0]?.end, undefined, "nothing was recorded");
      });
    });

    void describe("artifact batches", () => {
      const attemptUrl = (runId: string, taskId = "1") =>
        `/api/v1/flows/BatchFlow/runs/${runId}/steps/start/tasks/${taskId}/attempts/0`;
      const refs = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ref(`${prefix}${i}`));

      void it("an end naming a batch that never arrived is a 400 naming the missing batches; the end is not recorded", async () => {
        const md = provider();
        const runId = await md.newRun(record("BatchFlow"));
        await md.startAttempt("BatchFlow", runId, "start", "1", start());
        const base = attemptUrl(runId);
        assert.equal((await put(`${base}/artifacts/0`, { artifacts: refs("a", 2) })).status, 204);
        const res = await put(`${base}/end`, { ...end([ref("tail")]), artifactBatches: 3 });
        assert.equal(res.status, 400);
        assert.match(
          (await errorOf(res)).message,
          new RegExp(`^body\\.artifactBatches is 3, but batch 1, 2 of attempt 0 of BatchFlow/${runId}/start/1 was never received; send every batch before the end$`),
        );
        assert.equal((await md.getTask("BatchFlow", runId, "start", "1"))?.attempts[0]?.end, undefined);
        assert.equal((await put(`${base}/artifacts/1`, { artifacts: refs("b", 1) })).status, 204);
        assert.equal((await put(`${base}/artifacts/2`, { artifacts: refs("c", 1) })).status, 204);
        assert.equal((await put(`${base}/end`, { ...end([ref("tail")]), artifactBatches: 3 })).status, 204);
        const task = await md.getTask("BatchFlow", runId, "start", "1");
        assert.deepEqual(
          task?.attempts[0]?.end?.artifacts.map((r) => r.name),
          ["a0", "a1", "b0", "c0", "tail"],
          "batches in order, then the end's own artifacts",
        );
      });

      void it("a batch for an attempt that has not started, or a run that does not exist, is a 404", async () => {
        const md = provider();
        const runId = await md.newRun(record("BatchFlow"));
        const early = await put(`${attemptUrl(runId, "7")}/artifacts/0`, { artifacts: refs("a", 1) });
        assert.equal(early.status, 404);
        assert.equal(
          (await errorOf(early)).message,
          `The start of attempt 0 of BatchFlow/${runId}/start/7 does not exist`,
        );
        const ghost = await put(`${attemptUrl("123456789")}/artifacts/0`, { artifacts: refs("a", 1) });
        assert.equal(ghost.status, 404);
        assert.match((await errorOf(ghost)).message, /^Run BatchFlow\/123456789 does not exist$/);
      });

      void it("a batch is written once: an identical retry is 204, a different one 409, also after the end", async () => {
        const md = provider();
        const runId = await md.newRun(record("BatchFlow"));
        await md.startAttempt("BatchFlow", runId, "start", "1", start());
        const url = `${attemptUrl(runId)}/artifacts/0`;
        const first = { artifacts: refs("a", 2) };
        assert.equal((await put(url, first)).status, 204);
        assert.equal((await put(url, first)).status, 204, "an identical retry is idempotent");
        const other = await put(url, { artifacts: refs("z", 2) });
        assert.equal(other.status, 409);
        const error = await errorOf(other);
        assert.equal(error.code, "immutable");
        assert.equal(
          error.message,
          `Batch 0 of the artifacts of attempt 0 of BatchFlow/${runId}/start/1 was already recorded differently, or the attempt has ended`,
        );
        assert.equal((await put(`${attemptUrl(runId)}/end`, { ...end([]), artifactBatches: 1 })).status, 204);
        assert.equal((await put(`${attemptUrl(runId)}/artifacts/1`, first)).status, 409, "no batch after the end");
        const task = await md.getTask("BatchFlow", runId, "start", "1");
        assert.deepEqual(task?.attempts[0]?.end?.artifacts.map((r) => r.name), ["a0", "a1"]);
      });

      void it("batch numbers, batch counts and the artifact total have limits (999, 1000, 100,000): 400s naming them", async () => {
        const md = provider();
        const runId = await md.newRun(record("BatchFlow"));
        await md.startAttempt("BatchFlow", runId, "start", "1", start());
        const base = attemptUrl(runId);
        const high = await put(`${base}/artifacts/1000`, { artifacts: refs("a", 1) });
        assert.equal(high.status, 400);
        assert.equal((await errorOf(high)).message, 'batch must be an integer from 0 to 999, got "1000"');
        const many = await put(`${base}/end`, { ...end([]), artifactBatches: 1001 });
        assert.equal(many.status, 400);
        assert.equal((await errorOf(many)).message, "body.artifactBatches must be an integer from 1 to 1000, got 1001");
        const none = await put(`${base}/end`, { ...end([]), artifactBatches: 0 });
        assert.equal(none.status, 400, "zero batches is not a batched end");

        // 100,001 artifacts in all, in batches that each fit the 1 MiB body limit.
        const all = refs("n", 100_001);
        const perBatch = 6000;
        let batches = 0;
        for (let i = 0; i < all.length; i += perBatch, batches++) {
          const res = await put(`${base}/artifacts/${batches}`, { artifacts: all.slice(i, i + perBatch) });
          assert.equal(res.status, 204, `batch ${batches}`);
        }
        const over = await put(`${base}/end`, { ...end([]), artifactBatches: batches });
        assert.equal(over.status, 400);
        assert.equal(
          (await errorOf(over)).message,
          `body.artifactBatches bring the attempt 0 of BatchFlow/${runId}/start/1 to 100001 artifacts; at most 100000 are allowed`,
        );
        assert.equal((await md.getTask("BatchFlow", runId, "start", "1"))?.attempts[0]?.end, undefined);
      });
    });

    void describe("idempotent run creation (Idempotency-Key)", () => {
      const newRun = (flow: string, key: string) =>
        api(`/api/v1/flows/${flow}/runs`, {
          method: "POST",
          body: JSON.stringify(record(flow)),
          headers: { "idempotency-key": key },
        });
      const runIdOf = async (res: Response) => ((await res.json()) as { runId: string }).runId;

      void it("the same key twice gives the same run; through the client too", async () => {
        const key = `retry-${randomBytes(8).toString("hex")}`;
        const first = await newRun("KeyFlow", key);
        assert.equal(first.status, 201);
        const runId = await runIdOf(first);
        const again = await newRun("KeyFlow", key);
        assert.equal(again.status, 201);
        assert.equal(await runIdOf(again), runId);
        const md = provider();
        assert.equal(await md.newRun(record("KeyFlow"), { idempotencyKey: key }), runId);
        assert.deepEqual(await md.listRuns("KeyFlow"), [runId]);
      });

      void it("a key already used by another flow is a 409 naming the key, and creates nothing", async () => {
        const key = `other-${randomBytes(8).toString("hex")}`;
        const runId = await runIdOf(await newRun("KeyFlowA", key));
        const res = await newRun("KeyFlowB", key);
        assert.equal(res.status, 409);
        const error = await errorOf(res);
        assert.equal(error.code, "idempotency-key-reused");
        assert.ok(error.message.includes(JSON.stringify(key)), error.message);
        assert.match(error.message, /another flow.*new key/);
        assert.ok(!error.message.includes(runId), "the other flow's run is not disclosed");
        const md = provider();
        assert.deepEqual(await md.listRuns("KeyFlowB"), []);
        assert.ok(!(await md.listFlows()).includes("KeyFlowB"), "no flow row is left behind");
        assert.deepEqual(await md.listRuns("KeyFlowA"), [runId]);
      });

      void it("a malformed Idempotency-Key header is a 400 naming it", async () => {
        for (const key of ["short", "has spaces in it", "k".repeat(129), "semi;colon;key"]) {
          const res = await newRun("KeyFlowBad", key);
          assert.equal(res.status, 400, key);
          assert.match((await errorOf(res)).message, /^Idempotency-Key header must be 8 to 128 .*got "/);
        }
        assert.deepEqual(await provider().listRuns("KeyFlowBad"), []);
      });

      void it("concurrent posts with one key for several flows: one run, the others a 409, no 500", async () => {
        const key = `race-${randomBytes(8).toString("hex")}`;
        const flows = Array.from({ length: 6 }, (_, i) => `KeyRaceFlow${i}`);
        const replies = await Promise.all(flows.map((f) => newRun(f, key)));
        assert.deepEqual(replies.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409]);
      });

      void it("concurrent posts with one key for one flow make one run, and no 500", async () => {
        // Opens the service's pooled connections first, so the posts below reach the database together.
        await Promise.all(Array.from({ length: 12 }, () => newRun("KeyWarmFlow", randomBytes(8).toString("hex"))));
        const key = `race-${randomBytes(8).toString("hex")}`;
        const replies = await Promise.all(Array.from({ length: 12 }, () => newRun("KeyRaceFlow", key)));
        assert.deepEqual(
          replies.map((r) => r.status),
          replies.map(() => 201),
        );
        const ids = new Set(await Promise.all(replies.map(runIdOf)));
        assert.equal(ids.size, 1, `one run id, got ${[...ids].join(", ")}`);
        assert.deepEqual(await provider().listRuns("KeyRaceFlow"), [...ids]);
      });
    });

    void describe("system tags cannot be impersonated", () => {
      void it("user tags in a system namespace are refused when a run starts and when tags are edited", async () => {
        const bad = await post("/api/v1/flows/TagFlow/runs", {
          ...record("TagFlow"),
          tags: ["fine", "user:alice"],
        });
        assert.equal(bad.status, 400);
        assert.match((await errorOf(bad)).message, /body\.tags\[1\].*user:alice.*system/);
        const md = provider();
        const runId = await md.newRun(record("TagFlow"));
        const edit = await post(`/api/v1/flows/TagFlow/runs/${runId}/tags`, {
          add: ["metaflow_version:9"],
        });
        assert.equal(edit.status, 400);
        await assert.rejects(
          md.updateTags("TagFlow", runId, { add: ["runtime:prod"] }),
          InvalidTagError,
        );
        assert.deepEqual(await md.getTags("TagFlow", runId), []);
      });
    });

    void describe("per-user tokens", () => {
      let ann = "";
      let bob = "";
      let annId = "";

      before(async () => {
        const a = await tokenCli("create", "--user", "ann");
        ann = a.stdout.trim();
        annId = /token (\d+)/.exec(a.stderr)?.[1] ?? "";
        bob = (await tokenCli("create", "--user", "bob", "--label", "laptop")).stdout.trim();
      });

      void it("creates tokens that are shown once and stored only as a SHA-256 hash", async () => {
        assert.match(ann, /^mft_[A-Za-z0-9_-]{43}$/);
        assert.ok(annId, "the id is printed");
        const listed = (await tokenCli("list")).stdout;
        assert.match(listed, /ann/);
        assert.match(listed, /bob\s.*laptop/);
        assert.ok(!listed.includes(ann) && !listed.includes(bob), "list never shows a token");
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          const { rows } = await client.query("SELECT * FROM api_tokens");
          const dump = JSON.stringify(rows);
          assert.ok(
            !dump.includes(ann) && !dump.includes(ann.slice(4)),
            "no plaintext token in the database",
          );
          const hashes = rows.map((r: { token_sha256: Buffer }) => r.token_sha256.toString("hex"));
          assert.ok(hashes.includes(createHash("sha256").update(ann).digest("hex")));
        } finally {
          await client.end();
        }
      });

      void it("records a run under the token's user, whatever the client claims", async () => {
        const md = provider(ann);
        const runId = await md.newRun(
          record("OwnedFlow", { user: "mallory", systemTags: ["user:mallory", "runtime:dev"] }),
        );
        const run = await md.getRun("OwnedFlow", runId);
        assert.equal(run?.user, "ann");
        assert.ok(run?.systemTags.includes("user:ann"));
        assert.ok(!run?.systemTags.includes("user:mallory"));
        const who = await api("/api/v1/whoami", { token: ann });
        assert.deepEqual(await who.json(), { user: "ann", auth: "user-token" });
      });

      void it("lets only the run's owner write its attempts and end; anyone may tag it", async () => {
        const runId = await provider(bob).newRun(record("OwnedFlow", { user: "bob" }));
        const res = await put(
          `/api/v1/flows/OwnedFlow/runs/${runId}/end`,
          { status: "failed", finishedAt: Date.now() },
          ann,
        );
        assert.equal(res.status, 403);
        assert.match((await errorOf(res)).message, /belongs to bob/);
        assert.equal(
          (
            await put(
              `/api/v1/flows/OwnedFlow/runs/${runId}/steps/start/tasks/1/attempts/0/start`,
              start(),
              ann,
            )
          ).status,
          403,
        );
        assert.deepEqual(
          await provider(ann).updateTags("OwnedFlow", runId, { add: ["seen-by-ann"] }),
          ["seen-by-ann"],
        );
        await provider(bob).finishRun("OwnedFlow", runId, {
          status: "completed",
          finishedAt: Date.now(),
        });
      });

      void it("a real run through the CLI is recorded under the token's user", async () => {
        const work = new Project();
        try {
          work.write(
            "flow.ts",
            `import { FlowSpec, step } from "metaflow-ts";
export default class TokenFlow extends FlowSpec {
  @step start() { this.next(this.end); }
  @step end() {}
}
`,
          );
          const env = {
            METAFLOW_HOME: path.join(work.dir, "no-config"),
            METAFLOW_DEFAULT_METADATA: "service",
            METAFLOW_SERVICE_URL: service.url,
            METAFLOW_SERVICE_AUTH_TOKEN: ann,
            METAFLOW_USER: "mallory",
          };
          const r = await work.cli(["run", "flow.ts"], { env });
          assert.equal(r.code, 0, r.stderr);
          const md = provider();
          const runId = (await md.listRuns("TokenFlow"))[0]!;
          assert.equal((await md.getRun("TokenFlow", runId))?.user, "ann");
        } finally {
          work.cleanup();
        }
      });

      void it("a revoked token is refused at once", async () => {
        const temp = (await tokenCli("create", "--user", "carol")).stdout.trim();
        assert.equal((await api("/api/v1/flows", { token: temp })).status, 200);
        const id = /^\s*(\d+)\s+carol/m.exec((await tokenCli("list")).stdout)?.[1];
        assert.ok(id);
        await tokenCli("revoke", id);
        assert.equal((await api("/api/v1/flows", { token: temp })).status, 401);
        assert.match(
          (await tokenCli("list")).stdout,
          new RegExp(`^\\s*${id}\\s+carol.*revoked`, "m"),
        );
        await assert.rejects(tokenCli("revoke", "999999"), /no token 999999/);
        await assert.rejects(tokenCli("create", "--user", "bad user"), /--user/);
      });

      void it("a service started without a shared token accepts per-user tokens only", async () => {
        // The password as libpq's ?password= parameter this time: it must be masked in the log too.
        const url = `postgres://postgres@127.0.0.1:${db.port}/metaflow?password=${db.password}`;
        const strict = await startServiceProcess({ databaseUrl: url });
        try {
          assert.match(strict.output(), /per-user tokens only/);
          assert.match(strict.output(), /metaflow\?password=\*\*\*/);
          assert.ok(!strict.output().includes(db.password), "the password is not logged");
          const ok = await fetch(`${strict.url}/api/v1/flows`, {
            headers: { authorization: `Bearer ${ann}` },
          });
          assert.equal(ok.status, 200);
          const sharedRes = await fetch(`${strict.url}/api/v1/flows`, {
            headers: { authorization: `Bearer ${shared}` },
          });
          assert.equal(sharedRes.status, 401);
          await assert.rejects(
            provider(shared, strict.url).listFlows(),
            (e: unknown) => e instanceof MetadataServiceError && e.status === 401,
          );
        } finally {
          await strict.stop();
        }
      });
    });
  },
);
