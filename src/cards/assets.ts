/**
 * Files that `npm run build` bundles for the browser (the card chart runtime, the web UI), read
 * from the package's `dist/` at run time. Nothing is bundled or downloaded while a flow runs.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { MetaflowError } from "../errors.js";

/** A browser asset is missing from `dist/`: the package was not built. */
export class MissingAssetError extends MetaflowError {
  constructor(readonly file: string) {
    super("missing-asset", `Missing ${file}`, `Missing ${file}: the browser bundles are made by 'npm run build' (run it in the metaflow-ts checkout).`);
  }
}

let root: string | undefined;

/** The directory of the metaflow-ts package this module belongs to. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        if ((JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === "metaflow-ts") return (root = dir);
      } catch {
        // Not a readable package.json: keep looking above.
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new MissingAssetError("the metaflow-ts package directory");
    dir = up;
  }
}

/** A built asset's text and its CSP hash (`sha256-...`). */
export interface Asset {
  readonly text: string;
  readonly cspHash: string;
}

const cache = new Map<string, Asset>();

/** Reads `dist/<rel>` once per process. */
export function readAsset(rel: string): Asset {
  const known = cache.get(rel);
  if (known) return known;
  const file = path.join(packageRoot(), "dist", rel);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new MissingAssetError(path.join("dist", rel));
  }
  const asset = { text, cspHash: `sha256-${createHash("sha256").update(text, "utf8").digest("base64")}` };
  cache.set(rel, asset);
  return asset;
}
