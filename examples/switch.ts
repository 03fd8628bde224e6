/**
 * A switch: the value of an artifact picks the next step; a case naming the step itself repeats it.
 *   npx metaflow run examples/switch.ts --target 20
 */
import { FlowSpec, Parameter, step } from "metaflow-ts";

/** Doubles a number until it passes a target, then reports whether it overshot by much. */
export default class SwitchFlow extends FlowSpec {
  target = Parameter("target", { default: 20, help: "Stop doubling past this" });
  declare value: number;
  declare state: string;
  declare verdict: string;

  /** Start at 1. */
  @step start() {
    this.value = 1;
    this.next(this.grow);
  }

  /** Double; go round again until the target is passed (recursion through a switch). */
  @step grow() {
    this.value *= 2;
    this.state =
      this.value <= this.target ? "again" : this.value > 2 * this.target ? "far" : "near";
    this.next({ again: this.grow, near: this.near, far: this.far }, { condition: "state" });
  }

  /** Landed close. */
  @step near() {
    this.verdict = `${this.value} is just past ${this.target}`;
    this.next(this.end);
  }

  /** Overshot. */
  @step far() {
    this.verdict = `${this.value} overshot ${this.target}`;
    this.next(this.end);
  }

  /** The switch's branches meet here, at an ordinary step. */
  @step end() {
    console.log(this.verdict);
  }
}
