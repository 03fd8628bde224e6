/**
 * From artifact values to stored bytes and back: a registered serializer when one claims the value
 * (the user's first, then the built-in ones listed here), else the built-in encodings (raw bytes
 * for Buffers and typed arrays, structured clone for plain data).
 */
import { types } from "node:util";
import v8 from "node:v8";
import { arrowSerializer } from "./arrow.js";
import {
  assertStorable,
  deserializeValue,
  describeType,
  serializeBinary,
  serializeV8,
  type SerializedValue,
} from "./serialize.js";
import {
  describeError,
  findSerializer,
  registerBuiltinSerializer,
  serializerFor,
  SerializerError,
  type Serializer,
  type ValueDescription,
} from "./serializers.js";
import { MAX_SUMMARY_CHARS, type ArtifactRef, type Encoding } from "./types.js";

// The serializers that ship with Metaflow.ts, all registered like a user's.
registerBuiltinSerializer(arrowSerializer);

/** Largest summary a serializer may record in the artifact index, as JSON. */

/** A value ready to be stored: how it is encoded, and its bytes on demand. */
export interface PreparedValue {
  readonly encoding: Encoding;
  readonly type: string;
  readonly typedArray?: string;
  readonly serializer?: string;
  readonly summary?: Readonly<Record<string, unknown>>;
  /**
   * The bytes to store; plain data is serialized only now (so a task can check all its artifacts
   * before writing any, without holding every serialized copy at once). May throw for plain data
   * that structured clone rejects after all (nesting too deep).
   */
  chunks(): Buffer[];
}

/** What decoding needs to know about a stored value. */
export type StoredLocator = Pick<ArtifactRef, "hash" | "encoding" | "typedArray"> &
  Partial<Pick<ArtifactRef, "name" | "type" | "serializer" | "summary">>;

/**
 * Prepares `value` for storing; throws a SerializerError when a serializer fails, or a plain Error
 * naming the part of the value that cannot be stored. `validate: false` skips the storability walk
 * of plain data (for values that were loaded, hence valid, and are re-encoded to detect changes).
 */
export async function prepareValue(value: unknown, options: { validate?: boolean } = {}): Promise<PreparedValue> {
  const binary = serializeBinary(value);
  if (binary) return fixed(binary);
  // Serializers store objects (and functions); primitives keep the built-in encodings.
  const serializer = (typeof value === "object" && value !== null) || typeof value === "function" ? serializerFor(value) : undefined;
  if (serializer) return encodeWith(serializer, value);
  if (options.validate !== false) assertStorable(value);
  // Serialized once, however often it is asked for (a changed-value check, then the write).
  let chunks: Buffer[] | undefined;
  return { encoding: "v8", type: describeType(value), chunks: () => (chunks ??= serializeV8(value).chunks) };
}

/** Rebuilds a stored value: with the serializer its index names, else the built-in encodings. */
export function decodeStored(bytes: Buffer, ref: StoredLocator): unknown {
  if (ref.serializer === undefined) {
    return deserializeValue(bytes, { encoding: ref.encoding, ...(ref.typedArray ? { typedArray: ref.typedArray } : {}) });
  }
  const name = ref.serializer;
  const what = ref.name === undefined ? `object ${ref.hash}` : `artifact '${ref.name}'`;
  const serializer = findSerializer(name);
  if (!serializer) {
    throw new SerializerError(
      "serializer-missing",
      name,
      `No serializer "${name}" to read ${what}`,
      `${capitalize(what)} was stored by the serializer "${name}", which is not registered in this process. ` +
        `Register the same serializer before reading it, as the flow module does: ` +
        `registerSerializer({ name: ${JSON.stringify(name)}, test, encode, decode }) from "metaflow-ts" (see docs/data.md).`,
    );
  }
  const payload = ref.encoding === "v8" ? v8.deserialize(bytes) : bytes;
  try {
    return serializer.decode(payload, { type: ref.type ?? "unknown", ...(ref.summary ? { summary: ref.summary } : {}) });
  } catch (err) {
    throw new SerializerError(
      "serializer-failed",
      name,
      `Serializer "${name}" failed to read ${what}`,
      `The serializer "${name}" failed to decode ${what} (sha256 ${ref.hash}): ${describeError(err)}. ` +
        `Check that the serializer registered here matches the one that stored it.`,
    );
  }
}

async function encodeWith(serializer: Serializer, value: unknown): Promise<PreparedValue> {
  const { name } = serializer;
  const failed = (step: string, err: unknown): SerializerError =>
    new SerializerError("serializer-failed", name, `Serializer "${name}" failed`, `the serializer "${name}" failed to ${step}: ${describeError(err)}`);
  let encoded: unknown;
  try {
    encoded = await serializer.encode(value);
  } catch (err) {
    throw failed("encode it", err);
  }
  let description: ValueDescription = {};
  try {
    description = checkDescription(serializer.describe?.(value) ?? {});
  } catch (err) {
    throw failed("describe it", err);
  }
  const meta = {
    type: description.type ?? describeType(value),
    serializer: name,
    ...(description.summary ? { summary: description.summary } : {}),
  };
  const bytes = asChunks(encoded);
  if (bytes) {
    const chunks = bytes.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
    return { ...meta, encoding: "bytes", chunks: () => chunks };
  }
  try {
    assertStorable(encoded);
  } catch (err) {
    throw failed("return storable data", new Error(`encode() returned ${(err as Error).message}`));
  }
  return { ...meta, encoding: "v8", chunks: () => serializeV8(encoded).chunks };
}

/** `encode`'s result as byte chunks, or undefined when it is plain data. */
function asChunks(encoded: unknown): readonly Uint8Array[] | undefined {
  if (isBytes(encoded)) return [encoded];
  if (Array.isArray(encoded) && encoded.length > 0 && encoded.every(isBytes)) return encoded as Uint8Array[];
  return undefined;
}

function isBytes(v: unknown): v is Uint8Array {
  return types.isUint8Array(v);
}

function checkDescription(d: ValueDescription): ValueDescription {
  if (typeof d !== "object" || d === null) throw new TypeError(`describe() must return an object, got ${String(d)}`);
  if (d.type !== undefined && (typeof d.type !== "string" || d.type.length === 0 || d.type.length > 200)) {
    throw new TypeError(`describe().type must be a string of 1 to 200 characters, got ${JSON.stringify(d.type)}`);
  }
  if (d.summary !== undefined) {
    const json = JSON.stringify(d.summary);
    if (typeof json !== "string" || json.length > MAX_SUMMARY_CHARS || typeof d.summary !== "object" || d.summary === null || Array.isArray(d.summary)) {
      throw new TypeError(`describe().summary must be a plain object of at most ${MAX_SUMMARY_CHARS} characters of JSON, got ${Array.isArray(d.summary) ? "an array" : typeof json === "string" ? `${json.length} characters` : String(d.summary)}`);
    }
    return { ...d, summary: JSON.parse(json) as Record<string, unknown> };
  }
  return d;
}

function fixed(s: SerializedValue): PreparedValue {
  return {
    encoding: s.encoding,
    type: s.type,
    ...(s.typedArray === undefined ? {} : { typedArray: s.typedArray }),
    chunks: () => s.chunks,
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
