/** @deprecated Kept while branches that predate the single harness merge; use `Project` from ./project.js. */
import { Project } from "./project.js";

export { CLIENT_FLOW } from "../fixtures/client-flow.js";
export { collect as finished, DIST_INDEX, waitFor } from "./project.js";

/** @deprecated Use `new Project()`. */
export async function makeProject() {
  const p = new Project();
  return {
    dir: p.dir,
    root: p.root,
    write: async (name: string, text: string) => p.path(p.write(name, text)),
    cli: (args: readonly string[], env?: Record<string, string>) => p.cli(args, env ? { env } : {}),
    spawnCli: (args: readonly string[], env?: Record<string, string>) => p.spawn(args, env),
    remove: async () => p.cleanup(),
  };
}
