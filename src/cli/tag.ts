/** `metaflow tag add|remove|replace|list`: user tags on runs. */
import { Command } from "commander";
import { Flow, Run } from "../client/objects.js";
import { parsePathspec } from "../client/pathspec.js";
import { addNamespaceOptions, applyNamespace, exitOnClosedPipe, wholeNumber, type NamespaceFlags } from "./client-options.js";

interface ListFlags extends NamespaceFlags {
  hideSystemTags?: boolean;
  limit: string;
}

function printTags(run: Run, hideSystem: boolean | undefined): void {
  const user = run.userTags.length ? run.userTags.join(", ") : "(none)";
  const line = hideSystem ? `${run.pathspec}  user: ${user}` : `${run.pathspec}  user: ${user}  system: ${run.systemTags.join(", ")}`;
  process.stdout.write(`${line}\n`);
}

function edit(name: string, description: string, args: string, apply: (run: Run, values: string[]) => Promise<unknown>): Command {
  const cmd = new Command(name).argument("<run>", "the run, Flow/runId").argument(args, "tags").description(description);
  return addNamespaceOptions(cmd).action(async (pathspec: string, values: string[], flags: NamespaceFlags) => {
    applyNamespace(flags);
    parsePathspec(pathspec, "run");
    const run = await Run.get(pathspec);
    await apply(run, values);
    printTags(run, true);
  });
}

/** Builds the `tag` command and its subcommands. */
export function tagCommand(): Command {
  const list = new Command("list")
    .argument("<pathspec>", "a flow (its runs, newest first) or a run, Flow/runId")
    .description("list the tags of a run, or of the recent runs of a flow")
    .option("--hide-system-tags", "only user tags")
    .option("--limit <n>", "most runs to list for a flow", "20");
  addNamespaceOptions(list).action(async (pathspec: string, flags: ListFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    const parts = parsePathspec(pathspec, "flow", "run");
    if (parts.length === 2) return printTags(await Run.get(pathspec), flags.hideSystemTags);
    const limit = wholeNumber("--limit", flags.limit);
    let n = 0;
    for await (const run of new Flow(pathspec).runs()) {
      if (n++ >= limit) break;
      printTags(run, flags.hideSystemTags);
    }
  });
  const replace = new Command("replace")
    .argument("<run>", "the run, Flow/runId")
    .argument("<old>", "the user tag to remove")
    .argument("<new>", "the tag to add in its place")
    .description("replace one user tag by another, in one atomic edit");
  addNamespaceOptions(replace).action(async (pathspec: string, oldTag: string, newTag: string, flags: NamespaceFlags) => {
    applyNamespace(flags);
    parsePathspec(pathspec, "run");
    const run = await Run.get(pathspec);
    await run.replaceTag(oldTag, newTag);
    printTags(run, true);
  });
  const tag = new Command("tag").description("add, remove, replace or list the user tags of runs");
  for (const sub of [
    edit("add", "add user tags to a run", "<tags...>", (run, tags) => run.addTags(tags)),
    edit("remove", "remove user tags from a run (system tags cannot be removed)", "<tags...>", (run, tags) => run.removeTags(tags)),
    replace,
    list,
  ]) {
    // Like every command, report a bad flag through the CLI's error path instead of exiting here.
    tag.addCommand(sub.exitOverride().configureOutput({ writeErr: () => undefined }));
  }
  return tag;
}
