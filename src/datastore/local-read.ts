/**
 * Reading a stored object from a local file (the local backend, or the local cache of S3): the
 * payload lands in its own exactly-sized allocation and is verified against its hash as it is read.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import {
  FLAG_DEFLATE,
  FLAG_RAW,
  HEADER_SIZE,
  corruptObject,
  inflateOrCorrupt,
  inflateOrCorruptSync,
  missingObject,
  parseHeader,
  verify,
} from "./object-format.js";
import { readObjectOnHelper, type HelperRead } from "./sync-read.js";

/** Raw objects are read in slices of this size so hashing one slice overlaps reading the next. */
const READ_SLICE_BYTES = 8 * 1024 * 1024;
/** Objects at least this big are read synchronously on a helper thread (see sync-read.ts). */
const SYNC_HELPER_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Reads a local object so that a raw payload lands in its own exactly-sized allocation (typed arrays
 * then view it without a copy), hashing each slice while the next one is being read.
 */
export async function readLocalObject(file: string, hash: string): Promise<Buffer> {
  const handle = await openObject(file);
  if (!handle) throw missingObject(hash, file);
  try {
    const { flag, objectSize } = await readHeader(handle, hash, file);
    const payload = Buffer.allocUnsafeSlow(objectSize - HEADER_SIZE);
    if (flag === FLAG_DEFLATE) {
      await readFully(handle, payload, HEADER_SIZE);
      const data = await inflateOrCorrupt(payload, hash, file);
      verify(data, hash, file);
      return data;
    }
    const hasher = createHash("sha256");
    let pending = readFully(handle, payload.subarray(0, READ_SLICE_BYTES), HEADER_SIZE);
    for (let offset = 0; offset < payload.length; offset += READ_SLICE_BYTES) {
      await pending;
      const next = offset + READ_SLICE_BYTES;
      if (next < payload.length) {
        pending = readFully(
          handle,
          payload.subarray(next, next + READ_SLICE_BYTES),
          HEADER_SIZE + next,
        );
      }
      hasher.update(payload.subarray(offset, next));
    }
    const actual = hasher.digest("hex");
    if (actual !== hash) throw corruptObject(hash, file, `its content hashes to ${actual}`);
    return payload;
  } finally {
    await handle.close();
  }
}

/** Like `readLocalObject`, synchronously (big objects on a helper thread, see sync-read.ts). */
export function readLocalObjectSync(file: string, hash: string): Buffer {
  const big = readBigObjectSync(file, hash);
  if (big) return big;
  const fd = openObjectSync(file);
  if (fd === undefined) throw missingObject(hash, file);
  try {
    const objectSize = fs.fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_SIZE);
    readFullySync(fd, head, 0);
    const flag = parseHeader(head, objectSize, hash, file);
    const payload = Buffer.allocUnsafeSlow(objectSize - HEADER_SIZE);
    readFullySync(fd, payload, HEADER_SIZE);
    const data = flag === FLAG_DEFLATE ? inflateOrCorruptSync(payload, hash, file) : payload;
    verify(data, hash, file);
    return data;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A big object read synchronously through the helper thread, which overlaps reading and hashing;
 * undefined for small objects (or if the helper did not answer), which are read here.
 */
function readBigObjectSync(file: string, hash: string): Buffer | undefined {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat) throw missingObject(hash, file);
  if (stat.size < SYNC_HELPER_MIN_BYTES) return undefined;
  let read: HelperRead | undefined;
  try {
    read = readObjectOnHelper(file, stat.size);
  } catch (err) {
    // Deleted between the stat and the helper's open.
    if (isAbsent(err)) throw missingObject(hash, file);
    throw err;
  }
  if (!read) return undefined;
  const flag = parseHeader(read.head, read.objectSize, hash, file);
  if (flag === FLAG_DEFLATE) {
    const data = inflateOrCorruptSync(read.payload, hash, file);
    verify(data, hash, file);
    return data;
  }
  if (read.payloadHash !== hash) throw corruptObject(hash, file, `its content hashes to ${read.payloadHash}`);
  return read.payload;
}

/** Opens a stored object's file for reading; undefined when there is no such file. */
export async function openObject(file: string): Promise<fs.promises.FileHandle | undefined> {
  try {
    return await fs.promises.open(file, "r");
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

function openObjectSync(file: string): number | undefined {
  try {
    return fs.openSync(file, "r");
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

function isAbsent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

/** Reads and checks the header of the object open in `handle`; returns its payload flag and the file's length. */
export async function readHeader(
  handle: fs.promises.FileHandle,
  hash: string,
  file: string,
): Promise<{ readonly flag: number; readonly objectSize: number }> {
  const objectSize = (await handle.stat()).size;
  const head = Buffer.alloc(HEADER_SIZE);
  await readFully(handle, head, 0);
  return { flag: parseHeader(head, objectSize, hash, file), objectSize };
}

/**
 * Checks a local object's shape with one small read, whatever its size: its header must be ours
 * and, when `size` (the value's) is known, a raw payload exactly that long. False when the file is
 * missing; throws a corrupt-object error for a torn or overwritten file. Only a full read checks the
 * content itself.
 */
export async function checkObjectShape(file: string, hash: string, size?: number): Promise<boolean> {
  const handle = await openObject(file);
  if (!handle) return false;
  try {
    const { flag, objectSize } = await readHeader(handle, hash, file);
    if (size !== undefined && flag === FLAG_RAW && objectSize !== HEADER_SIZE + size) {
      throw corruptObject(hash, file, `it is ${objectSize} bytes long, but its header and value make ${HEADER_SIZE + size}`);
    }
    return true;
  } finally {
    await handle.close();
  }
}

/** Fills `target` from `position`; a short file (a torn write) leaves the rest unfilled and is caught by the hash. */
export async function readFully(
  handle: fs.promises.FileHandle,
  target: Buffer,
  position: number,
): Promise<void> {
  let filled = 0;
  while (filled < target.length) {
    const { bytesRead } = await handle.read(
      target,
      filled,
      target.length - filled,
      position + filled,
    );
    if (bytesRead === 0) {
      target.fill(0, filled);
      return;
    }
    filled += bytesRead;
  }
}

function readFullySync(fd: number, target: Buffer, position: number): void {
  let filled = 0;
  while (filled < target.length) {
    const bytesRead = fs.readSync(fd, target, filled, target.length - filled, position + filled);
    if (bytesRead === 0) {
      target.fill(0, filled);
      return;
    }
    filled += bytesRead;
  }
}
