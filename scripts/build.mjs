// Builds dist/: the library, the CLI and the worker host, as ESM with shared chunks so a process
// that loads several of them holds one copy of each module. Dependencies stay in node_modules.
import * as esbuild from "esbuild";
import { rmSync } from "node:fs";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await esbuild.build({
  entryPoints: { index: "src/index.ts", cli: "src/cli/main.ts", "task-cli": "src/cli/task-main.ts", worker: "src/worker.ts" },
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
