/**
 * Typed results: with the flow class as a type argument, `run.data(name)` has the type the flow
 * declared, and a misspelled artifact name does not compile. A script; run it with
 *   npx tsx examples/typed_results.ts
 */
import { Flow, Runner } from "metaflow-ts";
import HelloFlow from "./helloworld.js";

// Run a flow from code: the same code path as `metaflow run`, resolving to the finished Run.
const run = await new Runner<HelloFlow>("examples/helloworld.ts", {
  tags: ["typed-example"],
}).run();
const message: string = await run.data("message"); // typed as HelloFlow's `message`
console.log(`${run.pathspec} said: ${message}`);

// Or start from the class: Flow.of(HelloFlow) is a Flow<HelloFlow> named "HelloFlow".
const latest = await Flow.of(HelloFlow).latestSuccessfulRun();
const again = await latest.data("message");
console.log(`latest successful run ${latest.pathspec}: ${again.toUpperCase()}`);

// await latest.data("mesage");  // does not compile: "mesage" is not an artifact of HelloFlow
