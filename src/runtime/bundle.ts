/**
 * Bundles a flow file with esbuild into one CommonJS script (plus its source map) that a worker
 * host compiles once and runs in a fresh context per task. `metaflow-ts` stays outside the bundle:
 * each task gets the host's library with its own `current`.
 */
import * as esbuild from "esbuild";
import * as path from "node:path";
import { arrowBundlePlugin } from "../datastore/arrow-bundle.js";
import { FlowLoadError } from "../errors.js";

/** A bundled flow. */
export interface FlowBundle {
  /** Absolute path of the flow file. */
  readonly file: string;
  readonly code: string;
  readonly map: string;
  /** Local source files the bundle was built from, relative to the working directory. */
  readonly sources: readonly string[];
}

/**
 * Native addons (`.node`) load from node_modules at run time, by absolute path, once per host
 * process; a package's requires of other platforms' addons (never reached) must not fail the bundle.
 */
const nativeAddons: esbuild.Plugin = {
  name: "metaflow-ts:native-addons",
  setup(build) {
    build.onResolve({ filter: /\.node$/ }, async (args) => {
      if ((args.pluginData as { resolving?: boolean } | undefined)?.resolving) return undefined;
      const found = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { resolving: true },
      });
      return { path: found.errors.length === 0 ? found.path : args.path, external: true };
    });
  },
};

/** Bundles `file`; compile errors become a FlowLoadError quoting esbuild's file:line messages. */
export async function bundleFlow(file: string): Promise<FlowBundle> {
  const abs = path.resolve(file);
  const outfile = path.join(path.dirname(abs), `${path.basename(abs)}.bundle.cjs`);
  let result: esbuild.BuildResult<{ write: false; metafile: true }>;
  const workDir = process.cwd();
  try {
    result = await esbuild.build({
      absWorkingDir: workDir,
      entryPoints: [abs],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      outfile,
      write: false,
      metafile: true,
      sourcemap: "external",
      sourcesContent: false,
      keepNames: true,
      external: ["metaflow-ts"],
      plugins: [nativeAddons, arrowBundlePlugin()],
      logLevel: "silent",
    });
  } catch (err) {
    const failure = err as esbuild.BuildFailure;
    const msgs = (failure.errors ?? []).map((e) => {
      const loc = e.location;
      const where = loc ? `${path.relative(process.cwd(), path.resolve(loc.file)) || loc.file}:${loc.line}:${loc.column + 1}: ` : "";
      const excerpt = loc?.lineText ? `\n    ${loc.lineText}\n    ${" ".repeat(loc.column)}^` : "";
      return `${where}error: ${explain(e.text)}${excerpt}`;
    });
    throw new FlowLoadError(
      msgs.length > 0 ? `The flow does not compile:\n${msgs.join("\n")}` : String((err as Error).message),
      file,
    );
  }
  const js = result.outputFiles.find((f) => f.path.endsWith(".cjs"));
  const map = result.outputFiles.find((f) => f.path.endsWith(".map"));
  if (!js || !map) throw new FlowLoadError("esbuild produced no output", file);
  const sources = Object.keys(result.metafile.inputs)
    .filter((p) => !p.includes("node_modules/"))
    .map((p) => path.relative(workDir, path.resolve(workDir, p)));
  // The bundle runs from elsewhere (a content-addressed file), so the map names sources absolutely.
  const parsedMap = JSON.parse(map.text) as { sources: string[] };
  parsedMap.sources = parsedMap.sources.map((s) => path.resolve(path.dirname(outfile), s));
  return { file: abs, code: js.text, map: JSON.stringify(parsedMap), sources };
}

/** esbuild's messages, reworded where a flow file meets a limit of how tasks load it. */
function explain(text: string): string {
  if (/^Top-level await is currently not supported/.test(text)) {
    return (
      "top-level await is not supported in a flow file: every task loads the flow module synchronously, in a fresh context. " +
      "Move the awaited work into a step (`@step async start() { this.config = await loadConfig(); ... }`) or into a function your steps await."
    );
  }
  return text;
}
