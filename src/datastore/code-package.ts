/**
 * The code of each run, content-addressed: the bundle the tasks ran, its source map and every
 * local source file it was built from, listed in a manifest whose hash the run records.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContentStore } from "./cas.js";

/** The manifest of a stored code package. */
export interface CodeManifest {
  readonly flowFile: string;
  readonly className: string;
  readonly bundle: string;
  readonly sourceMap: string;
  /** Source path (relative to the working directory at run time) → content hash. */
  readonly files: Readonly<Record<string, string>>;
}

/** Stores the package; returns the manifest's hash and the local path of the runnable bundle. */
export async function storeCodePackage(
  store: ContentStore,
  bundle: { readonly code: string; readonly map: string; readonly sources: readonly string[] },
  flowFile: string,
  className: string,
  bundleDir: string,
): Promise<{ hash: string; bundlePath: string }> {
  const code = Buffer.from(bundle.code);
  const map = Buffer.from(bundle.map);
  const [codeRes, mapRes] = await Promise.all([store.put([code]), store.put([map])]);
  const files: Record<string, string> = {};
  await Promise.all(
    bundle.sources.map(async (rel) => {
      const bytes = await fs.promises.readFile(path.resolve(rel));
      files[rel] = (await store.put([bytes])).hash;
    }),
  );
  const manifest: CodeManifest = {
    flowFile,
    className,
    bundle: codeRes.hash,
    sourceMap: mapRes.hash,
    files: Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  const manifestRes = await store.put([Buffer.from(JSON.stringify(manifest))]);

  // Hosts compile the bundle from a local file named by its hash, shared by concurrent runs.
  await fs.promises.mkdir(bundleDir, { recursive: true });
  const bundlePath = path.join(bundleDir, `${codeRes.hash}.cjs`);
  if (!fs.existsSync(bundlePath)) {
    const tmp = `${bundlePath}.${process.pid}.${Date.now()}.tmp`;
    await fs.promises.writeFile(tmp, map);
    await fs.promises.rename(tmp, `${bundlePath}.map`);
    await fs.promises.writeFile(tmp, code);
    await fs.promises.rename(tmp, bundlePath);
  }
  return { hash: manifestRes.hash, bundlePath };
}
