/**
 * The smallest flow: three steps in a line. Run it with
 *   npx metaflow run examples/helloworld.ts
 */
import { FlowSpec, step } from "metaflow-ts";

/** A flow where each step says hello and hands a message to the next. */
export default class HelloFlow extends FlowSpec {
  declare message: string;

  /** The first step: make an artifact. */
  @step start() {
    this.message = "Hi there!";
    console.log("HelloFlow is starting.");
    this.next(this.hello);
  }

  /** Every value assigned to `this` is stored, versioned, and visible to later steps. */
  @step hello() {
    console.log(`Metaflow.ts says: ${this.message}`);
    this.next(this.end);
  }

  /** The last step. */
  @step end() {
    console.log("HelloFlow is all done.");
  }
}
