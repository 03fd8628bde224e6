/**
 * Client figures (issue 3), against a temp datastore holding 1,000 runs of one flow written
 * straight through `LocalMetadata` (running 1,000 flows would measure the runtime, not the client):
 * a fresh process opening `latestSuccessfulRun()` and reading one small artifact; listing every run
 * filtered by a tag; reading a 100 MB artifact.
 */
import { spawnSync } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ContentStore } from "../src/datastore/cas.js";
import { LocalStorage } from "../src/datastore/local.js";
import type { ArtifactRef } from "../src/datastore/types.js";
import { currentUser } from "../src/config.js";
import { LocalMetadata } from "../src/metadata/local.js";
import type { TakenTransition } from "../src/metadata/types.js";
import { Flow, namespace, Task } from "../src/index.js";
import { DIST_INDEX } from "./common.js";

const RUNS = 1000;
const BIG_BYTES = 100 * 1024 * 1024;
const FLOW = "BenchClientFlow";

/** Writes `RUNS` finished runs (every third one tagged `tagged`, the newest one failed) and a big artifact. */
async function populate(root: string): Promise<{ bigTask: string }> {
  const metadata = new LocalMetadata(root);
  const store = new ContentStore(new LocalStorage(root));
  const toRef = async (name: string, value: unknown): Promise<ArtifactRef> => {
    const s = await store.putValue(value);
    return { name, hash: s.hash, size: s.size, encoding: s.encoding, type: s.type, ...(s.typedArray ? { typedArray: s.typedArray } : {}) };
  };
  const code = (await store.put([Buffer.from(JSON.stringify({ flowFile: "bench.ts", className: FLOW, bundle: "", sourceMap: "", files: {} }))])).hash;
  const user = currentUser();
  // Records are written once (ended runs and attempts are immutable), so each run is written as it ends.
  const writeRun = async (n: number, extra: { big?: ArtifactRef; failed?: boolean } = {}): Promise<string> => {
    const runId = await metadata.newRun({
      flow: FLOW,
      user,
      createdAt: Date.now(),
      parameters: { n },
      parameterRefs: [],
      systemTags: [`user:${user}`, "metaflow_version:bench"],
      tags: n % 3 === 0 ? ["tagged", `run-${n}`] : [`run-${n}`],
      codePackage: code,
      flowFile: "bench.ts",
      className: FLOW,
    });
    const artifacts = [await toRef("score", n / RUNS), await toRef("label", `run ${n}`)];
    for (const [step, taskId] of [["start", "1"], ["end", "2"]] as const) {
      await metadata.startAttempt(FLOW, runId, step, taskId, { attempt: 0, startedAt: Date.now(), pid: process.pid, parents: [], frames: [] });
      const transition: TakenTransition = step === "end" ? { kind: "end" } : { kind: "linear", to: "end" };
      const refs = step === "start" && extra.big ? [...artifacts, extra.big] : artifacts;
      await metadata.endAttempt(FLOW, runId, step, taskId, { attempt: 0, finishedAt: Date.now(), status: "completed", artifacts: refs, transition });
    }
    await metadata.finishRun(FLOW, runId, extra.failed ? { status: "failed", finishedAt: Date.now(), failedStep: "end" } : { status: "completed", finishedAt: Date.now() });
    return runId;
  };
  for (let i = 0; i < RUNS - 2; i += 50) {
    // Fifty runs at a time: enough parallel file writes to be quick, few enough to keep ids in order.
    await Promise.all(Array.from({ length: Math.min(50, RUNS - 2 - i) }, (_, k) => writeRun(i + k)));
  }
  const big = Buffer.alloc(BIG_BYTES);
  for (let off = 0; off < BIG_BYTES; off += 4) big.writeUInt32LE((off * 2654435761) >>> 0, off);
  const bigRun = await writeRun(RUNS - 2, { big: await toRef("big", big) });
  // The newest run failed, so latestSuccessfulRun has to look past it.
  await writeRun(RUNS - 1, { failed: true });
  return { bigTask: `${FLOW}/${bigRun}/start/1` };
}

/** Runs `script` in a fresh `node` and returns its wall time in seconds and what it printed. */
function freshProcess(script: string, cwd: string): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd, encoding: "utf8" });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`bench script failed:\n${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

/** Measures the client figures of issue 3; needs `npm run build` (the fresh process loads dist/). */
export async function benchClient(): Promise<Record<string, number>> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "mf-bench-client-")));
  const root = path.join(dir, ".metaflow");
  try {
    await fs.mkdir(root);
    const { bigTask } = await populate(root);

    // Best of three: a cold page cache or a busy machine is not what the figure is about.
    const latest: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = freshProcess(
        `import { Flow } from ${JSON.stringify(DIST_INDEX)};
         const run = await new Flow(${JSON.stringify(FLOW)}).latestSuccessfulRun();
         console.log(await run.data("label"));`,
        dir,
      );
      if (!out.stdout.startsWith("run ")) throw new Error(`unexpected output: ${out.stdout}`);
      latest.push(out.seconds);
    }

    const listed = freshProcess(
      `import { Flow } from ${JSON.stringify(DIST_INDEX)};
       const t0 = performance.now();
       let n = 0;
       for await (const _ of new Flow(${JSON.stringify(FLOW)}).runs("tagged")) n++;
       console.log(JSON.stringify({ n, seconds: (performance.now() - t0) / 1000 }));`,
      dir,
    );
    const list = JSON.parse(listed.stdout) as { n: number; seconds: number };
    if (list.n !== Math.ceil(RUNS / 3)) throw new Error(`listed ${list.n} tagged runs, expected ${Math.ceil(RUNS / 3)}`);

    namespace(null);
    const task = await Task.get(bigTask, { datastoreRoot: root });
    const reads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const value = (await task.data("big")) as Buffer;
      reads.push((performance.now() - t0) / 1000);
      if (value.length !== BIG_BYTES) throw new Error("short read");
    }
    const inProcessList = performance.now();
    let n = 0;
    for await (const _ of new Flow(FLOW, { datastoreRoot: root }).runs("tagged")) n++;
    const warmListSeconds = (performance.now() - inProcessList) / 1000;
    void n;

    return {
      "latestSuccessfulRun + small artifact, fresh process (s)": Math.min(...latest),
      "list 1,000 runs filtered by a tag, fresh process (s)": list.seconds,
      "list 1,000 runs filtered by a tag, fresh process incl. start-up (s)": listed.seconds,
      "list 1,000 runs filtered by a tag, warm (s)": warmListSeconds,
      "read a 100 MB artifact (MB/s)": BIG_BYTES / 1024 / 1024 / Math.min(...reads),
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

// `node --import tsx bench/client.ts` prints the figures on their own.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [k, v] of Object.entries(await benchClient())) console.log(`${k.padEnd(70)} ${v.toFixed(3)}`);
}
