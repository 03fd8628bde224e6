// Helpers of the client tests (test/client.test.ts); test/helpers/project.ts serves the runtime tests.
/**
 * A throwaway project for integration tests: a temp directory with its own `.metaflow`, flow files
 * written into it, and the real `metaflow` CLI run in it as a child process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI (`npm run build` first). */
export const CLI = path.join(REPO, "bin/metaflow.js");
/** The built library, for scripts that run in their own process. */
export const DIST_INDEX = path.join(REPO, "dist/index.js");

/** A temp project directory. */
export interface Project {
  readonly dir: string;
  /** Its `.metaflow` directory. */
  readonly root: string;
  /** Writes a file (a flow, a script) into the project and returns its path. */
  write(name: string, text: string): Promise<string>;
  /** Runs `metaflow <args>` in the project and waits for it. */
  cli(args: readonly string[], env?: Record<string, string>): Promise<CliResult>;
  /** Starts `metaflow <args>` in the project without waiting. */
  spawnCli(args: readonly string[], env?: Record<string, string>): ChildProcess;
  remove(): Promise<void>;
}

/** What a finished CLI call printed. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Creates a temp project with an empty `.metaflow`, so its datastore is isolated. */
export async function makeProject(prefix = "mf-test-"): Promise<Project> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  const root = path.join(dir, ".metaflow");
  await fs.mkdir(root);
  const spawnCli = (args: readonly string[], env: Record<string, string> = {}) =>
    spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  return {
    dir,
    root,
    async write(name, text) {
      const file = path.join(dir, name);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, text);
      return file;
    },
    cli: (args, env) => finished(spawnCli(args, env)),
    spawnCli,
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** Collects a child's output and resolves when it exits. */
export function finished(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A flow with parameters, a foreach, stdout and stderr, and an optional failure in one foreach
 * task; `gate` makes its `square` tasks wait until that file exists, so a test can see a run
 * while it is running.
 */
export const CLIENT_FLOW = `
import * as fs from "node:fs";
import { FlowSpec, Parameter, step, type Inputs } from "metaflow-ts";

export default class ClientTestFlow extends FlowSpec {
  n = Parameter("n", { default: 3 });
  fail = Parameter("fail", { default: false });
  gate = Parameter("gate", { default: "" });
  declare items: number[];
  declare sq: number;
  declare total: number;
  declare blob: Buffer;

  @step start() {
    this.items = Array.from({ length: this.n }, (_, i) => i + 1);
    console.log("starting");
    console.error("a warning");
    this.next(this.square, { foreach: "items" });
  }

  @step async square() {
    console.log("square " + this.index);
    while (this.gate && !fs.existsSync(this.gate)) await new Promise((r) => setTimeout(r, 20));
    this.sq = (this.input as number) ** 2;
    if (this.fail && this.index === 1) throw new Error("boom in square");
    console.log("released " + this.index);
    this.next(this.join);
  }

  @step join(inputs: Inputs<ClientTestFlow>) {
    this.total = inputs.map((i) => i.sq).reduce((a, b) => a + b, 0);
    this.blob = Buffer.alloc(2 * 1024 * 1024, 7);
    this.next(this.end);
  }

  @step end() {
    console.log("total " + this.total);
  }
}
`;
