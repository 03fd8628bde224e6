/** Benchmark: a 100 MB Buffer artifact written in one step and read in the next. */
import { FlowSpec, Parameter, step } from "metaflow-ts";

export default class BigBufferFlow extends FlowSpec {
  mb = Parameter("mb", { default: 100 });
  seed = Parameter("seed", { default: 1 });
  declare blob: Buffer;
  declare checksum: number;
  declare peakRssMb: number;

  @step start() {
    this.blob = Buffer.alloc(this.mb * 1024 * 1024);
    // Random-looking bytes, so compression does not flatter the figure.
    for (let i = 0; i < this.blob.length; i += 4)
      this.blob.writeUInt32LE((i * 2654435761 + this.seed) >>> 0, i);
    this.next(this.read);
  }

  @step read() {
    this.checksum = this.blob.length + this.blob[this.blob.length - 1]!;
    // The host's peak so far: it ran the start step too (the benchmark runs one worker).
    this.peakRssMb = process.resourceUsage().maxRSS / 1024;
    this.next(this.end);
  }

  @step end() {}
}
