#!/usr/bin/env node
// `metaflow task` (what cluster jobs run for every attempt) loads only what a task needs.
if (process.argv[2] === "task") await import("../dist/task-cli.js");
else await import("../dist/cli.js");
