// Builds dist/: the library, the CLI and the worker host, as ESM with shared chunks so a process
// that loads several of them holds one copy of each module. Dependencies stay in node_modules.
import * as esbuild from "esbuild";
import { readFileSync, rmSync } from "node:fs";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await esbuild.build({
  entryPoints: { index: "src/index.ts", cli: "src/cli/main.ts", "task-cli": "src/cli/task-main.ts", worker: "src/worker.ts", watchdog: "src/task/watchdog.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  sourcemap: "linked",
  chunkNames: "chunks/[name]-[hash]",
  logLevel: "warning",
});

// Browser bundles, made here and never at run time: the chart runtime inlined into cards that
// draw charts, and the web UI. Both are self-contained (no network when they run).
const browser = { bundle: true, minify: true, format: "iife", platform: "browser", target: "es2022", logLevel: "warning", legalComments: "none" };
await esbuild.build({ ...browser, entryPoints: ["src/cards/web/vega-runtime.ts"], outfile: "dist/cards/vega-runtime.js" });
await esbuild.build({
  ...browser,
  entryPoints: { app: "src/ui/web/main.tsx" },
  outdir: "dist/ui",
  jsx: "automatic",
  jsxImportSource: "preact",
  loader: { ".css": "css" },
});
// A card inlines the runtime in a <script> element: the text must not be able to close it.
for (const file of ["dist/cards/vega-runtime.js", "dist/ui/app.js"]) {
  if (/<\/script/i.test(readFileSync(file, "utf8"))) throw new Error(`${file} contains "</script": it cannot be inlined`);
}
