/** `metaflow show FLOW`: the steps, their transitions and their doc comments. */
import { Command } from "commander";
import * as fs from "node:fs";
import { FlowLoadError } from "../errors.js";
import { buildGraph, formatGraph } from "../graph/index.js";

/** Builds the `show` command. */
export function showCommand(): Command {
  return new Command("show")
    .argument("<flow>", "the flow file")
    .description("print the flow's steps, transitions and doc comments")
    .action((file: string) => {
      if (!fs.existsSync(file)) throw new FlowLoadError(`No such file: ${file}`, file);
      process.stdout.write(`${formatGraph(buildGraph(file, fs.readFileSync(file, "utf8")))}\n`);
    });
}
