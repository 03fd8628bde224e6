/**
 * What the `@card` decorator's in-task hook calls: `startTaskCards` before the step (its `set` is
 * `current.card`), `finish` after it. Cards save into the task's datastore through `CardStore`;
 * nothing here throws into the task.
 *
 * @example
 * const cards = startTaskCards(specs, { flow, runId, step, taskId, attempt, user }, storage, log);
 * setCurrentCards(cards.set);                       // current.card while the step runs
 * try { await next(); } finally {
 *   await cards.finish({ status, parameters, artifacts, graph });
 * }
 */
import { CardStore } from "../datastore/cards.js";
import type { StorageBackend } from "../datastore/types.js";
import { createCardSet, type CardSet } from "./card-set.js";
import type { CardSaveRequest, CardSpec } from "./collector.js";
import type { CardData, CardTaskInfo } from "./card-type.js";

/** The task whose cards these are. */
export interface TaskIdentity {
  readonly flow: string;
  readonly runId: string;
  readonly step: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly user?: string;
}

/** What the final cards show, known when the step has ended. */
export interface TaskOutcome {
  readonly status: "completed" | "failed";
  readonly parameters?: CardData["parameters"];
  readonly artifacts?: CardData["artifacts"];
  readonly graph?: CardData["graph"];
}

/** The cards of one running task. */
export interface TaskCards {
  /** `current.card` for the step. */
  readonly set: CardSet;
  /** Adds one more card (the next `@card` of the step), saving like the others. */
  add(spec: CardSpec): void;
  /** Renders and saves every card's final page; never throws. */
  finish(outcome: TaskOutcome): Promise<void>;
}

/**
 * Creates the step's cards for one attempt of a task, saving into `storage`. `known` tells live
 * refreshes what is known while the step runs (the run's parameters, the graph).
 */
export function startTaskCards(
  specs: readonly CardSpec[],
  task: TaskIdentity,
  storage: StorageBackend,
  log: (line: string) => void,
  known: () => Pick<TaskOutcome, "parameters" | "graph"> = () => ({}),
): TaskCards {
  const store = new CardStore(storage);
  const startedAt = new Date();
  const address = { flow: task.flow, runId: task.runId, step: task.step, taskId: task.taskId };
  const info = (status: CardTaskInfo["status"], finishedAt?: Date): CardTaskInfo => ({
    ...address,
    attempt: task.attempt,
    status,
    startedAt,
    ...(finishedAt ? { finishedAt } : {}),
    ...(task.user ? { user: task.user } : {}),
  });
  const options = {
    save: async (c: CardSaveRequest) => {
      await store.save(address, task.attempt, { index: c.index, type: c.spec.type, ...(c.spec.id === undefined ? {} : { id: c.spec.id }), html: c.html, final: c.final });
    },
    liveData: (): CardData => {
      const k = known();
      return { task: info("running"), final: false, ...(k.parameters ? { parameters: k.parameters } : {}), ...(k.graph ? { graph: k.graph } : {}) };
    },
    log,
  };
  const set = createCardSet(specs, options);
  return {
    set,
    add: (spec) => void set.add(spec, options),
    finish: (o) =>
      set.finish({
        task: info(o.status, new Date()),
        final: true,
        ...(o.parameters ? { parameters: o.parameters } : {}),
        ...(o.artifacts ? { artifacts: o.artifacts } : {}),
        ...(o.graph ? { graph: o.graph } : {}),
      }),
  };
}
