/** `metaflow card view|get|list PATHSPEC`: the cards of a task. */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { cardLabel, pickCard, type Card } from "../client/cards.js";
import { Run, Task } from "../client/objects.js";
import { parsePathspec } from "../client/pathspec.js";
import { UsageError } from "../errors.js";
import { addNamespaceOptions, applyNamespace, exitOnClosedPipe, type NamespaceFlags } from "./client-options.js";

interface CardFlags extends NamespaceFlags {
  id?: string;
  type?: string;
  json?: boolean;
}

/** The task a pathspec names: `Flow/run/step/task`, or `Flow/run/step` when the step has one task. */
async function resolveTask(pathspec: string): Promise<Task> {
  const parts = parsePathspec(pathspec, "step", "task");
  if (parts.length === 4) return Task.get(pathspec);
  const step = await (await Run.get(`${parts[0]}/${parts[1]}`)).step(parts[2]!);
  const ids = step.taskIdList;
  if (ids.length !== 1) {
    throw new UsageError(`Step ${pathspec} has ${ids.length} tasks; name one, e.g. ${pathspec}/${ids[0]} (tasks: ${ids.slice(0, 10).join(", ")}${ids.length > 10 ? ", ..." : ""})`);
  }
  return step.task();
}

async function chosenCard(pathspec: string, flags: CardFlags): Promise<Card> {
  const task = await resolveTask(pathspec);
  return pickCard(await task.cards(), task.pathspec, { ...(flags.id === undefined ? {} : { id: flags.id }), ...(flags.type === undefined ? {} : { type: flags.type }) });
}

/** The command that opens a file with the desktop's default program, when there is a desktop. */
function systemOpener(file: string): [string, string[]] | undefined {
  const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
  if (process.platform === "darwin") return ["open", [file]];
  if (process.platform === "win32") return ["cmd", ["/c", "start", "", file]];
  if ((process.env.DISPLAY || process.env.WAYLAND_DISPLAY) && has("xdg-open")) return ["xdg-open", [file]];
  return undefined;
}

function withCardOptions(cmd: Command): Command {
  return addNamespaceOptions(cmd.option("--id <id>", "the card with this id").option("--type <type>", "the card of this type (default, blank, ...)"));
}

/** Builds the `card` command and its subcommands. */
export function cardCommand(): Command {
  const list = addNamespaceOptions(
    new Command("list")
      .argument("<pathspec>", "a task, Flow/run/step/task (or a step that has one task)")
      .description("list the cards of a task: id, type, attempt, and whether it is still live")
      .option("--json", "one JSON object per line"),
  ).action(async (pathspec: string, flags: CardFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    const task = await resolveTask(pathspec);
    const cards = await task.cards();
    if (flags.json) {
      for (const c of cards) process.stdout.write(`${JSON.stringify(c)}\n`);
      return;
    }
    if (cards.length === 0) {
      process.stdout.write(`Task ${task.pathspec} has no cards (add @card to the step).\n`);
      return;
    }
    for (const c of cards) process.stdout.write(`${c.id ?? "-"}\t${c.type}\tattempt ${c.attempt}\t${c.live ? "live" : "final"}\n`);
  });

  const get = withCardOptions(
    new Command("get")
      .argument("<pathspec>", "a task, Flow/run/step/task (or a step that has one task)")
      .argument("[file]", "where to write the card's HTML (default: standard output)")
      .description("write a card's HTML page to a file or to standard output"),
  ).action(async (pathspec: string, file: string | undefined, flags: CardFlags) => {
    exitOnClosedPipe();
    applyNamespace(flags);
    const card = await chosenCard(pathspec, flags);
    const html = await card.html();
    if (file === undefined) {
      process.stdout.write(html);
      return;
    }
    try {
      fs.writeFileSync(file, html);
    } catch (err) {
      throw new UsageError(`Cannot write the card to ${file}: ${(err as Error).message}`);
    }
    process.stderr.write(`Wrote card ${cardLabel(card)} of ${card.taskPathspec} to ${file}\n`);
  });

  const view = withCardOptions(
    new Command("view")
      .argument("<pathspec>", "a task, Flow/run/step/task (or a step that has one task)")
      .description("open a card in the browser (or print the path of its file when there is no desktop)"),
  ).action(async (pathspec: string, flags: CardFlags) => {
    applyNamespace(flags);
    const card = await chosenCard(pathspec, flags);
    const dir = path.join(os.tmpdir(), `metaflow-cards-${process.getuid?.() ?? "user"}`);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${card.taskPathspec.replace(/\//g, "-")}-${card.id ?? card.type}-${card.index}.html`);
    fs.writeFileSync(file, await card.html());
    const opener = systemOpener(file);
    if (opener) {
      const child = spawn(opener[0], opener[1], { stdio: "ignore", detached: true });
      child.on("error", () => undefined);
      child.unref();
      process.stdout.write(`Opened ${file}\n`);
    } else {
      process.stdout.write(`${file}\n`);
    }
  });

  const card = new Command("card").description("view, save or list the cards (HTML reports) of a task");
  for (const sub of [view, get, list]) card.addCommand(sub.exitOverride().configureOutput({ writeErr: () => undefined }));
  return card;
}
