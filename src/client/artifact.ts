/** `DataArtifact`: one stored value of a task, described without loading it. */
import type { ArtifactRef, Encoding } from "../datastore/types.js";
import type { ClientContext } from "./context.js";

/** One artifact of a task: its name, size, type and content hash; `data()` loads the value. */
export class DataArtifact<T = unknown> {
  /** The artifact's name, as assigned on `this` in the step. */
  readonly name: string;
  /** sha256 of the serialized value; equal hashes mean equal values (stored once). */
  readonly hash: string;
  /** Size in bytes of the serialized value. */
  readonly size: number;
  /** Human-readable type, e.g. `number`, `Array`, `Map`, `Float64Array`. */
  readonly type: string;
  /** How the bytes are encoded in the content store. */
  readonly encoding: Encoding;
  /** The registered serializer that stored the value (`arrow`, or a user's), which `data()` needs; undefined for plain data. */
  readonly serializer: string | undefined;
  /** What the serializer recorded about the value (Arrow: `{ rows, columns }`), read without loading it. */
  readonly summary: Readonly<Record<string, unknown>> | undefined;
  /** `Flow/run/step/task/name`. */
  readonly pathspec: string;
  /** `Flow/run/step/task` of the task that holds it. */
  readonly taskPathspec: string;

  /** Built by `Task.artifact()` and `Task.artifacts()`; not meant to be called directly. */
  constructor(
    private readonly ctx: ClientContext,
    private readonly ref: ArtifactRef,
    taskPathspec: string,
  ) {
    this.name = ref.name;
    this.hash = ref.hash;
    this.size = ref.size;
    this.type = ref.type;
    this.encoding = ref.encoding;
    this.serializer = ref.serializer;
    this.summary = ref.summary;
    this.taskPathspec = taskPathspec;
    this.pathspec = `${taskPathspec}/${ref.name}`;
  }

  /**
   * Loads and returns the value (verified against its hash); a value stored by a serializer needs
   * that serializer registered in this process (a SerializerError names it otherwise).
   */
  async data(): Promise<T> {
    return (await this.ctx.store.getValue(this.ref)) as T;
  }

  /** The metadata as plain data (no value). */
  toJSON(): {
    name: string;
    hash: string;
    size: number;
    type: string;
    encoding: Encoding;
    serializer?: string;
    summary?: Readonly<Record<string, unknown>>;
    pathspec: string;
  } {
    return {
      name: this.name,
      hash: this.hash,
      size: this.size,
      type: this.type,
      encoding: this.encoding,
      ...(this.serializer === undefined ? {} : { serializer: this.serializer }),
      ...(this.summary === undefined ? {} : { summary: this.summary }),
      pathspec: this.pathspec,
    };
  }
}
