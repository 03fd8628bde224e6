/**
 * The stored object format shared by the content store's writers and readers: an 8-byte header
 * before the payload, its checks, and the errors for missing and corrupt objects.
 */
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { DatastoreError } from "../errors.js";

/**
 * Stored object layout: 8-byte header, then the payload. Eight bytes keep the payload 8-aligned in
 * a buffer read from offset 0, so Float64Array/BigInt64Array views need no copy.
 *   0..3  magic "MFCA"
 *   4     format version
 *   5     payload flag: 0 raw, 1 deflate
 *   6..7  reserved, zero
 */
const MAGIC = Buffer.from("MFCA", "latin1");
const FORMAT_VERSION = 1;
export const HEADER_SIZE = 8;
export const FLAG_RAW = 0;
export const FLAG_DEFLATE = 1;

const inflate = promisify(zlib.inflate);

/** The header of an object with this payload flag. */
export function header(flag: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[4] = FORMAT_VERSION;
  h[5] = flag;
  return h;
}

/** Returns the payload flag, or throws a corrupt-object error for anything that is not our header. */
export function parseHeader(head: Buffer, objectSize: number, hash: string, where: string): number {
  if (objectSize < HEADER_SIZE || head.length < HEADER_SIZE) {
    throw corruptObject(
      hash,
      where,
      `it is only ${objectSize} bytes long, shorter than the ${HEADER_SIZE}-byte header`,
    );
  }
  if (!head.subarray(0, 4).equals(MAGIC))
    throw corruptObject(hash, where, "its header does not start with the store's magic bytes");
  if (head[4] !== FORMAT_VERSION) {
    throw corruptObject(
      hash,
      where,
      `its format version is ${head[4]}, this version of Metaflow.ts reads version ${FORMAT_VERSION}`,
    );
  }
  const flag = head[5];
  if (flag !== FLAG_RAW && flag !== FLAG_DEFLATE)
    throw corruptObject(hash, where, `its payload flag ${flag} is unknown`);
  return flag;
}

/** Inflates a deflated payload; a payload that does not inflate is a corrupt object. */
export async function inflateOrCorrupt(payload: Buffer, hash: string, where: string): Promise<Buffer> {
  try {
    return await inflate(payload);
  } catch (err) {
    throw notInflatable(err, hash, where);
  }
}

/** Like `inflateOrCorrupt`, synchronously. */
export function inflateOrCorruptSync(payload: Buffer, hash: string, where: string): Buffer {
  try {
    return zlib.inflateSync(payload);
  } catch (err) {
    throw notInflatable(err, hash, where);
  }
}

function notInflatable(err: unknown, hash: string, where: string): LostObjectError {
  return corruptObject(hash, where, `its compressed payload cannot be inflated (${(err as Error).message})`);
}

/** Throws a corrupt-object error unless `data` hashes to `hash`. */
export function verify(data: Buffer, hash: string, where: string): void {
  const actual = createHash("sha256").update(data).digest("hex");
  if (actual !== hash) throw corruptObject(hash, where, `its content hashes to ${actual}`);
}

/**
 * How to store a lost object again: resume checks every object of a task it would clone. `command`
 * is the run's own `metaflow resume …` when the reader knows it.
 */
function recover(command: string | undefined): string {
  const how = command
    ? `\`npx ${command}\``
    : "`metaflow resume FLOW_FILE --origin-run-id RUN_ID`, which a failed run prints";
  return (
    `To store it again, resume the run that needs it (${how}): ` +
    "resume reruns every task whose stored objects are missing or corrupt instead of cloning it."
  );
}

/** A stored object that is missing or does not match its hash; resuming the run that needs it stores it again. */
export class LostObjectError extends DatastoreError {
  constructor(
    readonly problem: "missing" | "corrupt",
    /** The object's content hash. */
    readonly hash: string,
    /** The file or URL where it was looked for. */
    readonly where: string,
    /** What is wrong, before the recovery advice. */
    private readonly account: string,
    resumeCommand?: string,
  ) {
    super(`${account} ${recover(resumeCommand)}`);
  }

  /** The same error, its advice naming the command that resumes the run (`metaflow resume …`); caused by this one. */
  withResumeCommand(command: string): LostObjectError {
    const named = new LostObjectError(this.problem, this.hash, this.where, this.account, command);
    named.cause = this;
    return named;
  }
}

/** The error for an object that is not in the store, and how to recover. */
export function missingObject(hash: string, where: string): LostObjectError {
  return new LostObjectError(
    "missing",
    hash,
    where,
    `Object ${hash} is not in the datastore (looked for ${where}): the file was deleted, or the run that wrote it used another datastore.`,
  );
}

/** The error for an object whose bytes do not match its name, and how to recover. */
export function corruptObject(hash: string, where: string, detail: string): LostObjectError {
  return new LostObjectError(
    "corrupt",
    hash,
    where,
    `Object ${hash} at ${where} is corrupt or was torn by an interrupted write: ${detail}. Delete ${where}, then resume.`,
  );
}
