/**
 * An esbuild plugin for flow bundles: wherever the flow (or a package it imports) loads
 * `apache-arrow`, the bundled copy is announced to Metaflow.ts with `useArrow`, so that each task
 * rebuilds the Arrow tables it reads with the same copy its own code uses (see arrow.ts).
 */
import * as path from "node:path";
import type { Plugin } from "esbuild";

const NAMESPACE = "metaflow-ts-arrow";

/** The plugin; `bundleFlow` adds it to every flow bundle. */
export function arrowBundlePlugin(): Plugin {
  return {
    name: "metaflow-ts:apache-arrow",
    setup(build) {
      build.onResolve({ filter: /^apache-arrow$/ }, async (args) => {
        if ((args.pluginData as { real?: boolean } | undefined)?.real) return undefined;
        const real = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: { real: true },
        });
        if (real.errors.length > 0) return { errors: real.errors };
        return { path: real.path, namespace: NAMESPACE };
      });
      // The shim is the real module plus one call; `metaflow-ts` stays external, so the call
      // reaches the library instance of the task that evaluates the bundle.
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => {
        const real = JSON.stringify(args.path);
        return {
          contents:
            `import * as arrow from ${real};\n` +
            `import * as metaflow from "metaflow-ts";\n` +
            `export * from ${real};\n` +
            `if (typeof metaflow.useArrow === "function") metaflow.useArrow(arrow);\n`,
          loader: "js",
          resolveDir: path.dirname(args.path),
        };
      });
    },
  };
}
