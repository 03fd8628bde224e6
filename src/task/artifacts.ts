/**
 * A task's artifacts on the flow instance: inputs wired as lazy properties (loaded from the
 * content store on first read, rebuilt in the step's realm), parameters read-only, and — when the
 * step ends — everything it can see persisted, passing unchanged inputs on by reference.
 */
import { createHash } from "node:crypto";
import v8 from "node:v8";
import { artifactRef, type ContentStore } from "../datastore/cas.js";
import { prepareValue, type PreparedValue } from "../datastore/codec.js";
import { assertStorable } from "../datastore/serialize.js";
import type { ArtifactRef } from "../datastore/types.js";
import { ArtifactSerializationError } from "../errors.js";

/** Per-artifact bookkeeping while the step runs. */
interface Slot {
  readonly ref: ArtifactRef;
  loaded: boolean;
  value: unknown;
}

/** Counters of what the task read. */
export interface LoadStats {
  loadMs: number;
  bytesLoaded: number;
}

/** Reads stored values into the step's realm, counting time and bytes. */
export class ArtifactLoader {
  readonly stats: LoadStats = { loadMs: 0, bytesLoaded: 0 };

  constructor(
    private readonly store: ContentStore,
    private readonly adopt: (value: unknown) => unknown,
  ) {}

  /**
   * The whole stored value of `ref`. Plain data is rebuilt in the step's realm; a value a
   * serializer decoded was already built with the task's own classes.
   */
  load(ref: ArtifactRef): unknown {
    return this.timed(ref, () => this.inRealm(ref, this.store.getValueSync(ref)));
  }

  /** One element of a stored list: a foreach task rebuilds only its own element in its realm. */
  loadElement(ref: ArtifactRef, index: number): unknown {
    return this.timed(ref, () => this.inRealm(ref, (this.store.getValueSync(ref) as unknown[])[index]));
  }

  private inRealm(ref: ArtifactRef, value: unknown): unknown {
    return ref.serializer === undefined ? this.adopt(value) : value;
  }

  private timed(ref: ArtifactRef, read: () => unknown): unknown {
    const t = performance.now();
    const v = read();
    this.stats.loadMs += performance.now() - t;
    this.stats.bytesLoaded += ref.size;
    return v;
  }
}

/** Names on the flow instance that are never artifacts. */
const INTERNAL = new Set(["input", "index"]);

/** The artifacts wired on one flow instance. */
export class ArtifactSlots {
  private readonly slots = new Map<string, Slot>();
  private readonly params: ReadonlySet<string>;

  constructor(
    private readonly flow: Record<string, unknown>,
    private readonly loader: ArtifactLoader,
    parameterNames: readonly string[],
  ) {
    this.params = new Set(parameterNames);
  }

  /** True when `name` is a parameter of the run. */
  isParameter(name: string): boolean {
    return this.params.has(name);
  }

  /** True when `name` is an input the step has not replaced. */
  isWiredInput(name: string): boolean {
    return this.slots.has(name);
  }

  /** Wires a stored artifact as a lazy property of the flow instance. */
  wire(ref: ArtifactRef): void {
    const slot: Slot = { ref, loaded: false, value: undefined };
    this.slots.set(ref.name, slot);
    const flow = this.flow;
    const read = (): unknown => {
      if (!slot.loaded) {
        slot.value = this.loader.load(ref);
        slot.loaded = true;
      }
      return slot.value;
    };
    if (this.params.has(ref.name)) {
      Object.defineProperty(flow, ref.name, {
        configurable: false,
        enumerable: true,
        get: read,
        set: () => {
          throw new TypeError(`Parameter '${ref.name}' is read-only: assign the value to another artifact`);
        },
      });
      return;
    }
    Object.defineProperty(flow, ref.name, {
      configurable: true,
      enumerable: true,
      get() {
        const v = read();
        Object.defineProperty(flow, ref.name, { value: v, writable: true, enumerable: true, configurable: true });
        return v;
      },
      set(v: unknown) {
        Object.defineProperty(flow, ref.name, { value: v, writable: true, enumerable: true, configurable: true });
      },
    });
  }

  /**
   * Stores everything the step can see, private artifacts (`_x`) included; inputs it never changed
   * pass on by reference. Every value is checked (and every serializer runs) before the first byte
   * is written, so a value that cannot be stored leaves nothing of the task half-stored. With
   * `bestEffort` (a failed attempt keeping what it had assigned), a value that cannot be stored is
   * skipped and named in `skipped` instead.
   */
  async persist(
    step: string,
    store: ContentStore,
    options: { bestEffort?: boolean } = {},
  ): Promise<{ refs: ArtifactRef[]; bytesWritten: number; skipped: string[] }> {
    const refs: ArtifactRef[] = [];
    const skipped: string[] = [];
    const toStore: { name: string; prepared: PreparedValue }[] = [];
    for (const name of Object.keys(this.flow)) {
      if (INTERNAL.has(name)) continue;
      try {
        const prepared = await this.prepare(step, name, store, refs);
        if (prepared) toStore.push({ name, prepared });
      } catch (err) {
        if (!options.bestEffort) throw err;
        skipped.push(name);
      }
    }
    let bytesWritten = 0;
    for (const { name, prepared } of toStore) {
      try {
        const stored = await putOrFail(step, name, prepared, store);
        bytesWritten += stored.written ? stored.size : 0;
        refs.push(artifactRef(name, stored));
      } catch (err) {
        if (!options.bestEffort) throw err;
        skipped.push(name);
      }
    }
    return { refs, bytesWritten, skipped };
  }

  /** One artifact: its ref is appended when it passes on unchanged, else it comes back prepared to store. */
  private async prepare(step: string, name: string, store: ContentStore, refs: ArtifactRef[]): Promise<PreparedValue | undefined> {
    const desc = Object.getOwnPropertyDescriptor(this.flow, name)!;
    const slot = this.slots.get(name);
    if (slot && desc.get) {
      // Never read (or a parameter): pass the stored reference on without touching the data.
      refs.push(slot.ref);
      return undefined;
    }
    const value = desc.value;
    if (slot && slot.loaded && slot.value === value) {
      // Read and possibly mutated in place: keep the stored object if the value did not change.
      const now = isPrimitive(value) ? undefined : await prepareOrFail(step, name, value, false);
      if (now === undefined || unchangedOrFail(step, name, value, store, slot.ref, now)) {
        refs.push(slot.ref);
        return undefined;
      }
      // Changed: check what the quick comparison skipped, and store what it already serialized.
      if (now.encoding === "v8") storableOrFail(step, name, value);
      return now;
    }
    if (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[Symbol.for("metaflow-ts.parameter")]) {
      return undefined; // a Parameter() marker of a parameter the run did not define
    }
    return prepareOrFail(step, name, value, true);
  }
}

function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== "object" && typeof v !== "function");
}

function hashChunks(chunks: readonly Buffer[]): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/**
 * Whether a loaded value still serializes to what was stored. v8's bytes are not stable across a
 * round trip (number and string representations may change), so a mismatch is re-checked against
 * the stored bytes after one round trip of their own.
 */
function unchanged(store: ContentStore, ref: ArtifactRef, now: PreparedValue): boolean {
  const chunks = now.chunks();
  if (hashChunks(chunks) === ref.hash) return true;
  if (ref.encoding !== "v8" || now.encoding !== "v8" || ref.serializer !== now.serializer) return false;
  const roundTripped = v8.serialize(v8.deserialize(store.getSync(ref.hash)));
  const current = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return roundTripped.equals(current);
}

async function prepareOrFail(step: string, name: string, value: unknown, validate: boolean): Promise<PreparedValue> {
  try {
    return await prepareValue(value, { validate });
  } catch (err) {
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}

/** `unchanged`, with a value that cannot be serialized reported as the artifact's error. */
function unchangedOrFail(step: string, name: string, value: unknown, store: ContentStore, ref: ArtifactRef, now: PreparedValue): boolean {
  try {
    return unchanged(store, ref, now);
  } catch (err) {
    if ((err as { code?: string }).code === "datastore") throw err;
    // Say where in the value the problem is (the walk does), else what serializing it said.
    storableOrFail(step, name, value);
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}

function storableOrFail(step: string, name: string, value: unknown): void {
  try {
    assertStorable(value);
  } catch (err) {
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}

async function putOrFail(step: string, name: string, prepared: PreparedValue, store: ContentStore) {
  try {
    return await store.putPrepared(prepared);
  } catch (err) {
    if ((err as { code?: string }).code === "datastore") throw err;
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}
