/** `CodePackage`: the exact code a run ran, as stored in the content store when it started. */
import type { CodeManifest } from "../datastore/code-package.js";
import { DatastoreError } from "../errors.js";
import type { FlowGraph } from "../graph/types.js";
import type { ClientContext } from "./context.js";

/** The stored code of a run: its source files (by path), the flow file and the bundle the tasks ran. */
export class CodePackage {
  /** The flow file, as given to `metaflow run`. */
  readonly flowFile: string;
  /** The flow's class name. */
  readonly className: string;
  /** Every local source file the flow was built from, relative to the run's working directory. */
  readonly files: readonly string[];

  /** Built by `Run.code()`. */
  constructor(
    private readonly ctx: ClientContext,
    readonly hash: string,
    private readonly manifest: CodeManifest,
  ) {
    this.flowFile = manifest.flowFile;
    this.className = manifest.className;
    this.files = Object.keys(manifest.files);
  }

  /** The text of one stored source file; `file` is one of `files`. */
  async read(file: string): Promise<string> {
    const hash = this.manifest.files[file];
    if (hash === undefined) {
      throw new DatastoreError(`The code package has no file '${file}'; it holds: ${this.files.join(", ")}`);
    }
    return (await this.ctx.store.get(hash)).toString("utf8");
  }

  /** The source of the flow file itself. */
  async flowSource(): Promise<string> {
    const rel = this.files.find((f) => f === this.flowFile) ?? this.files.find((f) => f.endsWith(this.flowFile.replace(/^\.\//, "")));
    if (rel === undefined) throw new DatastoreError(`The code package does not list the flow file '${this.flowFile}'`);
    return this.read(rel);
  }

  /** The bundled JavaScript the tasks executed. */
  async bundle(): Promise<string> {
    return (await this.ctx.store.get(this.manifest.bundle)).toString("utf8");
  }

  /** The flow's graph, derived from the stored flow source as `metaflow show` derives it. */
  async graph(): Promise<FlowGraph> {
    // The parser (@babel/parser) loads only here: every task and client process imports this module.
    const { buildGraph } = await import("../graph/parse.js");
    return buildGraph(this.flowFile, await this.flowSource(), { className: this.className });
  }
}
