/** Benchmark: ten steps in a line, each passing a small artifact on. */
import { FlowSpec, step } from "metaflow-ts";

export default class Linear10Flow extends FlowSpec {
  declare n: number;
  @step start() {
    this.n = 0;
    this.next(this.s1);
  }
  @step s1() {
    this.n += 1;
    this.next(this.s2);
  }
  @step s2() {
    this.n += 1;
    this.next(this.s3);
  }
  @step s3() {
    this.n += 1;
    this.next(this.s4);
  }
  @step s4() {
    this.n += 1;
    this.next(this.s5);
  }
  @step s5() {
    this.n += 1;
    this.next(this.s6);
  }
  @step s6() {
    this.n += 1;
    this.next(this.s7);
  }
  @step s7() {
    this.n += 1;
    this.next(this.s8);
  }
  @step s8() {
    this.n += 1;
    this.next(this.end);
  }
  @step end() {
    this.n += 1;
  }
}
