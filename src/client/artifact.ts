/** `DataArtifact`: one stored value of a task, described without loading it. */
import type { ArtifactRef, Encoding } from "../datastore/types.js";
import { LostObjectError } from "../datastore/object-format.js";
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
  /** The attempt that stored it. */
  readonly attempt: number;
  /**
   * True when the attempt that stored it failed: the value is what the step had assigned before
   * it failed (a failed task keeps its artifacts for inspection; later steps never see them).
   */
  readonly fromFailedAttempt: boolean;

  /** Built by `Task.artifact()` and `Task.artifacts()`; not meant to be called directly. */
  constructor(
    private readonly ctx: ClientContext,
    private readonly ref: ArtifactRef,
    taskPathspec: string,
    origin: ArtifactOrigin = { attempt: 0, failed: false },
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
    this.attempt = origin.attempt;
    this.fromFailedAttempt = origin.failed;
    this.resume = origin.resume;
  }

  /** The command that reruns the task that stores this value, for a missing or corrupt object. */
  private readonly resume: string | undefined;

  /** True for a private artifact (its name starts with `_`): hidden from listings unless asked for. */
  get isPrivate(): boolean {
    return isPrivateName(this.name);
  }

  /**
   * Loads and returns the value (verified against its hash); a value stored by a serializer needs
   * that serializer registered in this process (a SerializerError names it otherwise).
   */
  async data(): Promise<T> {
    try {
      return (await this.ctx.store.getValue(this.ref)) as T;
    } catch (err) {
      // Only resume stores a lost object again; a value that does not decode needs other help.
      if (err instanceof LostObjectError && this.resume) throw err.withResumeCommand(this.resume);
      throw err;
    }
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
    attempt: number;
    fromFailedAttempt: boolean;
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
      attempt: this.attempt,
      fromFailedAttempt: this.fromFailedAttempt,
    };
  }
}

/** Which attempt stored an artifact, and the command that stores it again if its object is lost. */
export interface ArtifactOrigin {
  readonly attempt: number;
  readonly failed: boolean;
  /** `metaflow resume FLOW_FILE --origin-run-id RUN` of the run that holds the task. */
  readonly resume?: string;
}

/** Whether an artifact name is private (starts with `_`), as in Metaflow. */
export function isPrivateName(name: string): boolean {
  return name.startsWith("_");
}
