/**
 * Every flow in the datastore, its latest run, status and tags: a script, not a flow, that shows
 * the client API. Run it with
 *   npx tsx examples/worldview.ts            # your runs
 *   npx tsx examples/worldview.ts --all      # everyone's runs
 */
import { Metaflow, namespace, getNamespace, ObjectNotFoundError } from "metaflow-ts";

if (process.argv.includes("--all")) namespace(null);
const ns = getNamespace();
console.log(`Namespace: ${ns ?? "(global)"}`);

for (const flow of await new Metaflow().flows()) {
  try {
    const run = await flow.latestRun();
    const when = run.createdAt.toISOString().replace("T", " ").slice(0, 19);
    const tags = run.userTags.length ? `  tags: ${run.userTags.join(", ")}` : "";
    console.log(
      `${flow.name.padEnd(24)} ${run.id}  ${run.status.padEnd(9)} ${when}  by ${run.user}${tags}`,
    );
  } catch (err) {
    // A flow whose runs all belong to other namespaces.
    if (!(err instanceof ObjectNotFoundError)) throw err;
    console.log(`${flow.name.padEnd(24)} (no run in this namespace)`);
  }
}
