/**
 * What a crash looks like. Each split of `work` dies differently — out of memory, killed by a
 * signal, a native crash — and the diagnosis (never a bare exit code) lands on the console, in the
 * task's metadata and, thanks to `@catchError`, in the artifact `crash`. Run it with
 *   npx metaflow run examples/failures/crash.ts
 * Without `@catchError`, the same diagnosis ends the run and is `task.exception` in the client.
 */
import { FlowSpec, step, catchError, resources, type Inputs } from "metaflow-ts";

/** A foreach whose tasks crash in three ways. */
export default class CrashFlow extends FlowSpec {
  declare ways: string[];
  declare crash: { name: string; message: string } | undefined;
  declare diagnoses: string[];

  /** One split per way to die. */
  @step start() {
    this.ways = ["out of memory", "killed", "native crash"];
    this.next(this.work, { foreach: "ways" });
  }

  /**
   * `@resources({ memory: 128 })` runs each task in a process of its own with a 128 MiB V8 heap,
   * so running out of memory costs only that task.
   */
  @catchError({ var: "crash" })
  @resources({ memory: 128 })
  @step async work() {
    const way = this.input as string;
    if (way === "out of memory") {
      const hog: number[][] = [];
      for (;;) hog.push(new Array(1_000_000).fill(1));
    }
    if (way === "killed") {
      // As the kernel's out-of-memory killer or `kill -9` would.
      process.kill(process.pid, "SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
    if (way === "native crash") process.abort();
    this.next(this.join);
  }

  /** Collects each split's diagnosis. */
  @step join(inputs: Inputs<CrashFlow>) {
    this.diagnoses = inputs.map((i) => `${i.input as string}: ${i.crash?.name}: ${i.crash?.message}`);
    this.next(this.end);
  }

  /** Prints them. */
  @step end() {
    for (const line of this.diagnoses) console.log(line);
  }
}
