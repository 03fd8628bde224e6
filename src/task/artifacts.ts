/**
 * A task's artifacts on the flow instance: inputs wired as lazy properties (loaded from the
 * content store on first read, rebuilt in the step's realm), parameters read-only, and — when the
 * step ends — everything it can see persisted, passing unchanged inputs on by reference.
 */
import { createHash } from "node:crypto";
import v8 from "node:v8";
import type { ContentStore } from "../datastore/cas.js";
import { serializeValue } from "../datastore/serialize.js";
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

  /** The whole stored value of `ref`. */
  load(ref: ArtifactRef): unknown {
    return this.timed(ref, () => this.adopt(this.store.getValueSync(ref)));
  }

  /** One element of a stored list: a foreach task rebuilds only its own element in its realm. */
  loadElement(ref: ArtifactRef, index: number): unknown {
    return this.timed(ref, () => this.adopt((this.store.getValueSync(ref) as unknown[])[index]));
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

  /** Stores everything the step can see; inputs it never changed pass on by reference. */
  async persist(step: string, store: ContentStore): Promise<{ refs: ArtifactRef[]; bytesWritten: number }> {
    const refs: ArtifactRef[] = [];
    let bytesWritten = 0;
    for (const name of Object.keys(this.flow)) {
      if (INTERNAL.has(name) || name.startsWith("_")) continue;
      const desc = Object.getOwnPropertyDescriptor(this.flow, name)!;
      const slot = this.slots.get(name);
      if (slot && desc.get) {
        // Never read (or a parameter): pass the stored reference on without touching the data.
        refs.push(slot.ref);
        continue;
      }
      const value = desc.value;
      if (slot && slot.loaded && slot.value === value && (isPrimitive(value) || unchanged(store, slot.ref, serializeOrFail(step, name, value)))) {
        // Read and possibly mutated in place: keep the stored object if the value did not change.
        refs.push(slot.ref);
        continue;
      }
      if (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[Symbol.for("metaflow-ts.parameter")]) {
        continue; // a Parameter() marker of a parameter the run did not define
      }
      const stored = await putOrFail(step, name, value, store);
      bytesWritten += stored.written ? stored.size : 0;
      refs.push({
        name,
        hash: stored.hash,
        size: stored.size,
        encoding: stored.encoding,
        type: stored.type,
        ...(stored.typedArray ? { typedArray: stored.typedArray } : {}),
      });
    }
    return { refs, bytesWritten };
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
function unchanged(store: ContentStore, ref: ArtifactRef, now: { chunks: Buffer[] }): boolean {
  if (hashChunks(now.chunks) === ref.hash) return true;
  if (ref.encoding !== "v8") return false;
  const roundTripped = v8.serialize(v8.deserialize(store.getSync(ref.hash)));
  const current = now.chunks.length === 1 ? now.chunks[0]! : Buffer.concat(now.chunks);
  return roundTripped.equals(current);
}

function serializeOrFail(step: string, name: string, value: unknown): ReturnType<typeof serializeValue> {
  try {
    return serializeValue(value, { validate: false });
  } catch (err) {
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}

async function putOrFail(step: string, name: string, value: unknown, store: ContentStore) {
  try {
    return await store.putValue(value);
  } catch (err) {
    if ((err as { code?: string }).code === "datastore") throw err;
    throw new ArtifactSerializationError(step, name, (err as Error).message);
  }
}
