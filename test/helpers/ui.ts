/**
 * Test helpers for cards and the UI: `metaflow ui` (or `metaflow service --ui`) as a real child
 * process, and Debian's Chromium driven by playwright-core.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CLI } from "./project.js";

/** A running `metaflow ui` (or `metaflow service --ui`). */
export interface UiProcess {
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `metaflow ...args` in `cwd` and resolves once it prints `pattern`'s URL (group 1). */
export function startServer(cwd: string, args: readonly string[], env: Record<string, string>, pattern: RegExp): Promise<UiProcess> {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      const m = pattern.exec(out);
      if (!m) return;
      clearInterval(poll);
      resolve({
        url: m[1]!,
        output: () => out,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
        },
      });
    }, 20);
    void exited.then(() => {
      clearInterval(poll);
      reject(new Error(`metaflow ${args.join(" ")} exited before serving:\n${out}`));
    });
  });
}

/** `metaflow ui --port 0` over the `.metaflow` of `cwd`. */
export function startUiProcess(cwd: string, env: Record<string, string> = {}): Promise<UiProcess> {
  return startServer(cwd, ["ui", "--port", "0"], env, /Metaflow UI on (http:\/\/\S+?)\/? /);
}

/** Where Chromium is, or why the browser tests cannot run; throws in CI, where it must be installed. */
export function chromiumAvailability(env: NodeJS.ProcessEnv = process.env): { path: string } | { skip: string } {
  const candidates = [env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter((p): p is string => !!p);
  const found = candidates.find((p) => fs.existsSync(p));
  if (found) return { path: found };
  const why = `Chromium is not installed (looked at ${candidates.join(", ")}); install it with: apt-get install -y chromium`;
  if (env.CI === "true") throw new Error(`${why}. CI must run the browser tests.`);
  return { skip: why };
}

/** The flags the brief gives for Chromium in this sandbox. */
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

/** Where tests keep screenshots (git-ignored). */
export const SCREENSHOTS = path.resolve("test-output", "screenshots");
