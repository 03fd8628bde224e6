/**
 * Local metadata: JSON files under `<root>/flows/<Flow>/<runId>/...`, written atomically. Safe for
 * many runs writing at once: run ids are claimed with an exclusive `mkdir`, and every other file
 * belongs to exactly one run's scheduler.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type {
  AttemptEnd,
  AttemptStart,
  MetadataProvider,
  RunEnd,
  RunRecord,
  TaskRecord,
} from "./types.js";

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(value));
  await fs.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8")) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
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

/** Compares run or task ids numerically when both are numbers, else as strings. */
export function compareIds(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Metadata kept as files in the local datastore directory. */
export class LocalMetadata implements MetadataProvider {
  private readonly madeDirs = new Set<string>();

  constructor(readonly root: string) {}

  /** Directory of a run; exported so logs and tags can live beside the metadata. */
  runDir(flow: string, runId: string): string {
    return path.join(this.root, "flows", flow, runId);
  }

  private taskDir(flow: string, runId: string, step: string, taskId: string): string {
    return path.join(this.runDir(flow, runId), step, taskId);
  }

  async newRun(record: Omit<RunRecord, "runId">): Promise<string> {
    const flowDir = path.join(this.root, "flows", record.flow);
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
    await writeJsonAtomic(path.join(flowDir, runId, "_run.json"), { ...record, runId });
    return runId;
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
    await writeJsonAtomic(path.join(dir, `attempt-${end.attempt}.end.json`), end);
  }

  async finishRun(flow: string, runId: string, end: RunEnd): Promise<void> {
    await writeJsonAtomic(path.join(this.runDir(flow, runId), "_end.json"), end);
  }

  async listFlows(): Promise<string[]> {
    return (await listDirs(path.join(this.root, "flows"))).sort();
  }

  async listRuns(flow: string): Promise<string[]> {
    return (await listDirs(path.join(this.root, "flows", flow))).sort(compareIds).reverse();
  }

  getRun(flow: string, runId: string): Promise<RunRecord | undefined> {
    return readJson<RunRecord>(path.join(this.runDir(flow, runId), "_run.json"));
  }

  getRunEnd(flow: string, runId: string): Promise<RunEnd | undefined> {
    return readJson<RunEnd>(path.join(this.runDir(flow, runId), "_end.json"));
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
    for (const n of attemptNos) {
      const start = await readJson<AttemptStart>(path.join(dir, `attempt-${n}.start.json`));
      const end = await readJson<AttemptEnd>(path.join(dir, `attempt-${n}.end.json`));
      if (start) attempts.push(end ? { start, end } : { start });
    }
    return { flow, runId, step, taskId, attempts };
  }
}
