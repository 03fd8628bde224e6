import { randomFillSync } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ContentStore } from "./cas.js";
import { LocalStorage } from "./local.js";

/**
 * Stores one incompressible `mb`-MiB Buffer in a content store under `dir` and reads it back;
 * `mbPerSec` is `mb` divided by the write and read times combined (one full round trip).
 */
export async function benchLargeBuffer(
  dir: string,
  mb = 100,
): Promise<{ writeMs: number; readMs: number; mbPerSec: number }> {
  const store = new ContentStore(new LocalStorage(dir));
  const value = randomFillSync(Buffer.allocUnsafeSlow(mb * 1024 * 1024));

  const writeStart = performance.now();
  const ref = await store.putValue(value);
  const writeMs = performance.now() - writeStart;

  const readStart = performance.now();
  const back = await store.getValue(ref);
  const readMs = performance.now() - readStart;

  if (!Buffer.isBuffer(back) || back.length !== value.length)
    throw new Error("benchmark read back a different value");
  return { writeMs, readMs, mbPerSec: mb / ((writeMs + readMs) / 1000) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-cas-"));
  try {
    const mb = Number(process.argv[2] ?? 100);
    for (let i = 0; i < 3; i++) {
      const r = await benchLargeBuffer(dir, mb);
      console.log(
        `${mb} MiB: write ${r.writeMs.toFixed(0)} ms, read ${r.readMs.toFixed(0)} ms, ${r.mbPerSec.toFixed(0)} MiB/s round trip`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
