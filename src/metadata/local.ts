/**
 * Local metadata: JSON files under `<root>/flows/<Flow>/<runId>/...`, written atomically. Safe for
 * many runs writing at once: run ids are claimed with an exclusive `mkdir`, every run file but the
 * tags belongs to exactly one run's scheduler, and tag edits hold a per-run lock file.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { DatastoreError, MetadataCorruptError, RecordConflictError } from "../errors.js";
import { Heartbeats, HEARTBEAT_FILE } from "./heartbeat.js";
import { attemptEndShape, attemptStartShape, runEndShape, runRecordShape, tagListShape, type ShapeCheck } from "./shape.js";
import { applyTagChange, type TagChange } from "./tags.js";
import type {
  AttemptEnd,
  AttemptStart,
  MetadataProvider,
  NewRunOptions,
  RunEnd,
  RunRecord,
  TaskRecord,
} from "./types.js";

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(value));
  await fs.rename(tmp, file);
}

/**
 * Writes a record that never changes once written (an attempt's end, a run's end): published with
 * a hard link, which fails atomically when the file exists; then an identical record is a retry
 * (accepted) and a different one a `RecordConflictError` naming `what`.
 */
async function writeJsonOnce(file: string, value: unknown, what: string): Promise<void> {
  const text = JSON.stringify(value);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, text);
  try {
    await fs.link(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Some filesystems have no hard links; there, check then rename (racy, but runs own their files).
    if ((code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") && !(await exists(file))) {
      await fs.rename(tmp, file);
      return;
    }
    if (code !== "EEXIST" && !(await exists(file))) throw err;
    const existing = await fs.readFile(file, "utf8");
    if (!sameJson(existing, text)) {
      throw new RecordConflictError(what, `${what} is already recorded in ${file} with other content; ended attempts and runs are immutable.`);
    }
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
}

function sameJson(a: string, b: string): boolean {
  try {
    return isDeepStrictEqual(JSON.parse(a), JSON.parse(b));
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Reads a record; undefined when the file does not exist, a `MetadataCorruptError` naming the file
 * (and `pathspec`, what it belongs to) when it is truncated, not JSON, or not shaped like `check` wants.
 */
async function readJson<T>(file: string, pathspec: string, check: ShapeCheck): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const what = text.length === 0 ? "is empty" : `is truncated or not valid JSON (${(err as Error).message})`;
    throw new MetadataCorruptError(file, pathspec, what);
  }
  const problem = check(value);
  if (problem !== undefined) throw new MetadataCorruptError(file, pathspec, problem);
  return value as T;
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith("_")).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** The run's user tags once edited; `_run.json` keeps the tags it started with. */
const TAGS_FILE = "_tags.json";
const TAGS_LOCK = "_tags.lock";
/** A lock older than this was left by a process that died mid-edit (an edit takes milliseconds). */
const STALE_LOCK_MS = 10_000;
const LOCK_TIMEOUT_MS = 30_000;

/**
 * Runs `fn` while holding `lockFile`, created with O_EXCL so exactly one process holds it; others
 * retry with jitter. A lock left behind by a crashed process is taken over once it is stale.
 */
async function withLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const handle = await fs.open(lockFile, "wx");
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new DatastoreError(`Cannot lock ${lockFile}: its run directory does not exist`);
      }
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const age = await fs.stat(lockFile).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) {
        // Rename first so two processes that both judge it stale cannot both delete a fresh lock.
        await fs.rename(lockFile, `${lockFile}.stale.${process.pid}`).then(
          () => fs.rm(`${lockFile}.stale.${process.pid}`, { force: true }),
          () => undefined,
        );
        continue;
      }
      if (Date.now() > deadline) {
        throw new DatastoreError(`Timed out waiting for ${lockFile}; if no other Metaflow process is editing tags, delete it`);
      }
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 10));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockFile, { force: true });
  }
}

/**
 * Links `keyFile` to `runId`; when another process claimed the key first, removes this call's run
 * (`runDir`) and returns the other run's id.
 */
async function claimKey(keyFile: string, runId: string, runDir: string): Promise<string> {
  await fs.mkdir(path.dirname(keyFile), { recursive: true });
  const tmp = `${keyFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, runId);
  try {
    // link() fails when the name exists: exactly one process claims the key, with its content.
    await fs.link(tmp, keyFile);
    return runId;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    await fs.rm(runDir, { recursive: true, force: true });
    return (await fs.readFile(keyFile, "utf8")).trim();
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
}

/** Compares run or task ids numerically when both are numbers, else as strings. */
export function compareIds(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of local metadata. */
export interface LocalMetadataOptions {
  /** A run with no end whose heartbeat is older than this reads as failed. @default 60000 */
  readonly heartbeatTimeoutMs?: number;
}

/** Metadata kept as files in the local datastore directory. */
export class LocalMetadata implements MetadataProvider {
  private readonly madeDirs = new Set<string>();
  private readonly heartbeats: Heartbeats;

  constructor(
    readonly root: string,
    options: LocalMetadataOptions = {},
  ) {
    this.heartbeats = new Heartbeats(options.heartbeatTimeoutMs ?? 60_000);
  }

  /** Directory of a run; exported so logs and tags can live beside the metadata. */
  runDir(flow: string, runId: string): string {
    return path.join(this.root, "flows", flow, runId);
  }

  private taskDir(flow: string, runId: string, step: string, taskId: string): string {
    return path.join(this.runDir(flow, runId), step, taskId);
  }

  async newRun(record: Omit<RunRecord, "runId">, options: NewRunOptions = {}): Promise<string> {
    const flowDir = path.join(this.root, "flows", record.flow);
    const key = options.idempotencyKey;
    if (key !== undefined && !/^[A-Za-z0-9_-]{8,128}$/.test(key)) {
      throw new DatastoreError(`An idempotency key must be 8 to 128 letters, digits, _ or -, got ${JSON.stringify(key)}`);
    }
    const keyFile = key === undefined ? undefined : path.join(flowDir, "_requests", key);
    const prior = keyFile === undefined ? undefined : await fs.readFile(keyFile, "utf8").catch(() => undefined);
    if (prior) return prior;
    await fs.mkdir(flowDir, { recursive: true });
    // Ids are millisecond timestamps, so they sort by start time; a clash with a concurrent run
    // takes the next free number.
    let id = Math.max(Date.now(), record.createdAt);
    for (;;) {
      try {
        await fs.mkdir(path.join(flowDir, String(id)));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        id += 1;
      }
    }
    const runId = String(id);
    // The heartbeat exists before the record, so no reader sees the run without one. A run an
    // orchestrator drives (Step Functions) has no runtime process to beat for it: it has none.
    const heartbeat = path.join(flowDir, runId, HEARTBEAT_FILE);
    if (record.orchestrator === undefined) this.heartbeats.start(heartbeat);
    await writeJsonAtomic(path.join(flowDir, runId, "_run.json"), { ...record, runId });
    if (keyFile === undefined) return runId;
    const claimed = await claimKey(keyFile, runId, path.join(flowDir, runId));
    if (claimed !== runId) this.heartbeats.stop(heartbeat);
    return claimed;
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  async startAttempt(flow: string, runId: string, step: string, taskId: string, start: AttemptStart): Promise<void> {
    const dir = this.taskDir(flow, runId, step, taskId);
    await this.ensureDir(dir);
    await writeJsonAtomic(path.join(dir, `attempt-${start.attempt}.start.json`), start);
  }

  async endAttempt(flow: string, runId: string, step: string, taskId: string, end: AttemptEnd): Promise<void> {
    const dir = this.taskDir(flow, runId, step, taskId);
    await this.ensureDir(dir);
    await writeJsonOnce(path.join(dir, `attempt-${end.attempt}.end.json`), end, `the end of attempt ${end.attempt} of ${flow}/${runId}/${step}/${taskId}`);
  }

  async finishRun(flow: string, runId: string, end: RunEnd): Promise<void> {
    this.heartbeats.stop(path.join(this.runDir(flow, runId), HEARTBEAT_FILE));
    await writeJsonOnce(path.join(this.runDir(flow, runId), "_end.json"), end, `the end of run ${flow}/${runId}`);
  }

  /** Stops the heartbeats of the runs this process started (they then read as failed unless ended). */
  close(): void {
    this.heartbeats.close();
  }

  async listFlows(): Promise<string[]> {
    return (await listDirs(path.join(this.root, "flows"))).sort();
  }

  async listRuns(flow: string): Promise<string[]> {
    return (await listDirs(path.join(this.root, "flows", flow))).sort(compareIds).reverse();
  }

  async getRun(flow: string, runId: string): Promise<RunRecord | undefined> {
    const dir = this.runDir(flow, runId);
    const pathspec = `${flow}/${runId}`;
    const [record, edited] = await Promise.all([
      readJson<RunRecord>(path.join(dir, "_run.json"), pathspec, runRecordShape),
      readJson<string[]>(path.join(dir, TAGS_FILE), pathspec, tagListShape),
    ]);
    return record && edited ? { ...record, tags: edited } : record;
  }

  async getTags(flow: string, runId: string): Promise<string[]> {
    const record = await this.getRun(flow, runId);
    if (!record) throw new DatastoreError(`Run ${flow}/${runId} does not exist in ${this.root}`);
    return [...record.tags];
  }

  async updateTags(flow: string, runId: string, change: TagChange): Promise<string[]> {
    const dir = this.runDir(flow, runId);
    return withLock(path.join(dir, TAGS_LOCK), async () => {
      const record = await this.getRun(flow, runId);
      if (!record) throw new DatastoreError(`Run ${flow}/${runId} does not exist in ${this.root}`);
      const tags = applyTagChange(record.tags, record.systemTags, change, `${flow}/${runId}`);
      await writeJsonAtomic(path.join(dir, TAGS_FILE), tags);
      return tags;
    });
  }

  /** The run's end; a run whose runtime is gone (heartbeat stale or process dead) without one reads as failed. */
  async getRunEnd(flow: string, runId: string): Promise<RunEnd | undefined> {
    const dir = this.runDir(flow, runId);
    const end = await readJson<RunEnd>(path.join(dir, "_end.json"), `${flow}/${runId}`, runEndShape);
    return end ?? this.heartbeats.deadEnd(path.join(dir, HEARTBEAT_FILE), `${flow}/${runId}`);
  }

  async listSteps(flow: string, runId: string): Promise<string[]> {
    return listDirs(this.runDir(flow, runId));
  }

  async listTasks(flow: string, runId: string, step: string): Promise<string[]> {
    return (await listDirs(path.join(this.runDir(flow, runId), step))).sort(compareIds);
  }

  async getTask(flow: string, runId: string, step: string, taskId: string): Promise<TaskRecord | undefined> {
    const dir = this.taskDir(flow, runId, step, taskId);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const attemptNos = names
      .map((n) => /^attempt-(\d+)\.start\.json$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const attempts = [];
    const pathspec = `${flow}/${runId}/${step}/${taskId}`;
    for (const n of attemptNos) {
      const start = await readJson<AttemptStart>(path.join(dir, `attempt-${n}.start.json`), pathspec, attemptStartShape);
      const end = await readJson<AttemptEnd>(path.join(dir, `attempt-${n}.end.json`), pathspec, attemptEndShape);
      if (start) attempts.push(end ? { start, end } : { start });
    }
    return { flow, runId, step, taskId, attempts };
  }
}
