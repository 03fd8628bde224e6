/**
 * `@card({ type, id, options, timeout, refreshInterval })`: an HTML report of each task of the
 * step, stored beside its artifacts. Several `@card`s on one step share one `current.card`; each
 * adds its card to it. A live card is saved by `refresh()` while the step runs; every card is
 * rendered one last time when the task ends, after its artifacts are stored. Nothing here fails
 * the task: a card that cannot be rendered or saved says so in the card and on the task's console.
 *
 * @example
 * @card({ type: "blank", id: "report" })
 * @step train() { current.card.get("report").append(new Markdown("# Training")); this.next(this.end); }
 */
import type { StepEnd, StepTask } from "../decorators/contract.js";
import { stepDecorator } from "../decorators/make.js";
import { current } from "../flow/current.js";
import type { CardSet } from "./card-set.js";
import type { CardSpec } from "./collector.js";
import { checkStepCards, parseCardOptions, type CardOptions } from "./options.js";
import { PREVIEW_LIMIT } from "./preview.js";
import { checkCardType } from "./registry.js";
import type { CardArtifactInfo, CardData } from "./card-type.js";
import { startTaskCards, type TaskCards, type TaskOutcome } from "./task-cards.js";

declare module "../flow/current.js" {
  interface CurrentExtensions {
    /**
     * The step's cards, on a step with `@card`: `append`, `extend`, `clear` and `refresh` act on its
     * only card (or only card without an id); `get(id)` picks one by id.
     */
    card: CardSet;
  }
}

/** Where the cards of a task are kept between the hooks of its `@card`s. */
const SLOT = "metaflow-ts.cards";

/** Adds an HTML report (a card) to each task of the step; see docs/cards.md. */
export const card = stepDecorator<CardOptions, CardSpec>({
  name: "card",
  help: "card:type=default|blank,id=ID,refreshInterval=S renders an HTML report of each task (metaflow card view)",
  repeatable: true,
  parse: (raw) => parseCardOptions(raw),
  plan(spec, _plan, context) {
    // An unknown type (a typo) stops the run before it starts, not as an error card in every task.
    checkCardType(spec.type);
    checkStepCards(
      context.step,
      context.decorators.filter((d) => d.name === "card").map((d) => d.options as unknown as CardSpec),
    );
  },
  async runStep(task, next, spec) {
    task.slot(SLOT, () => startCards(task)).add(spec);
    await next();
  },
});

/** The task's cards: `current.card`, and the final render once the artifacts are stored. */
function startCards(task: StepTask): TaskCards {
  const graph = task.graph.map((s) => ({ name: s.name, out: s.next }));
  const identity = {
    flow: task.flowName,
    runId: task.runId,
    step: task.stepName,
    taskId: task.taskId,
    attempt: task.retryCount,
    user: current.username,
  };
  const cards = startTaskCards([], identity, task.storage, (line) => task.log(line), () => ({ graph }));
  task.setCurrent("card", cards.set);
  task.onEnd((end) => cards.finish(outcomeOf(task, end, graph)));
  return cards;
}

/** What the final cards show; artifact values are read only when a card type looks at them. */
function outcomeOf(task: StepTask, end: StepEnd, graph: CardData["graph"]): TaskOutcome {
  const sizes = new Map(end.artifacts.map((a) => [a.name, a.size]));
  const parameters: Record<string, unknown> = {};
  for (const name of task.parameterNames) {
    parameters[name] = (sizes.get(name) ?? 0) > PREVIEW_LIMIT ? "(too large to preview)" : read(task, name);
  }
  const artifacts = end.artifacts.map((a): CardArtifactInfo => {
    const info = { name: a.name, type: a.type, size: a.size };
    if (a.size > PREVIEW_LIMIT) return info;
    let cached: { value: unknown } | undefined;
    return Object.defineProperty(info, "value", { enumerable: true, get: () => (cached ??= { value: read(task, a.name) }).value });
  });
  return { status: end.status, parameters, artifacts, ...(graph ? { graph } : {}) };
}

/** An artifact's value, or a note when it cannot be read. */
function read(task: StepTask, name: string): unknown {
  try {
    return task.get(name);
  } catch (err) {
    return `(cannot be read: ${(err as Error)?.message ?? String(err)})`;
  }
}
