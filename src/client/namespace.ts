/**
 * Namespaces: which runs the client sees. The default is `user:<you>`, so reading results never
 * picks up a colleague's run by accident; `namespace(null)` sees everything.
 */
import { currentUser } from "../config.js";
import { current } from "../flow/current.js";
import { UsageError } from "../errors.js";

/**
 * The namespace set with `namespace()`, remembered with the task it was set in: a flow's tasks
 * share the library in a long-lived host, so a switch made by one step must not leak into the next.
 */
let chosen: { readonly value: string | null; readonly task: string | undefined } | undefined;

function taskKey(): string | undefined {
  return current.isRunningFlow ? `${current.pathspec}#${current.retryCount}` : undefined;
}

/** The namespace a fresh process (or a running step) starts in: `user:<username>`. */
function initialNamespace(): string | null {
  return current.isRunningFlow ? current.namespace : `user:${currentUser()}`;
}

/**
 * Switches the client to the namespace `ns` (a tag such as `user:alice` or `team:search`), or to the
 * global namespace with `null`; returns it.
 * @example namespace(null); // every run of every user
 */
export function namespace(ns: string | null): string | null {
  if (ns !== null && (typeof ns !== "string" || ns.trim() === "")) {
    throw new UsageError(`namespace() takes a tag such as "user:alice", or null for every run; got ${JSON.stringify(ns)}`);
  }
  chosen = { value: ns, task: taskKey() };
  return ns;
}

/** The namespace the client reads in now; `null` means global. */
export function getNamespace(): string | null {
  return chosen !== undefined && chosen.task === taskKey() ? chosen.value : initialNamespace();
}

/** Switches back to the default namespace (`user:<username>`, or the run's inside a step) and returns it. */
export function defaultNamespace(): string | null {
  chosen = undefined;
  return initialNamespace();
}
