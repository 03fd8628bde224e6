/**
 * A task attempt's stdout and stderr: split into lines, shown on the console with the task's
 * prefix as they arrive, and appended to the attempt's log files with a timestamp per line.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** File name of an attempt's log for one stream. */
export function logFileName(attempt: number, stream: "stdout" | "stderr"): string {
  return `attempt-${attempt}.${stream}.log`;
}

/** Writes one attempt's logs. */
export class AttemptLogs {
  private readonly partial = { stdout: "", stderr: "" };
  private readonly files: Partial<Record<"stdout" | "stderr", fs.WriteStream>> = {};

  constructor(
    private readonly dir: string,
    private readonly attempt: number,
    private readonly show: (stream: "stdout" | "stderr", line: string) => void,
  ) {}

  /** Adds raw text from the task; complete lines are shown and stored. */
  write(stream: "stdout" | "stderr", text: string): void {
    const lines = (this.partial[stream] + text).split("\n");
    this.partial[stream] = lines.pop() ?? "";
    for (const line of lines) this.line(stream, line);
  }

  /** Adds one whole line (runtime messages such as a caught exception). */
  line(stream: "stdout" | "stderr", line: string): void {
    this.show(stream, line);
    let f = this.files[stream];
    if (!f) {
      fs.mkdirSync(this.dir, { recursive: true });
      f = fs.createWriteStream(path.join(this.dir, logFileName(this.attempt, stream)), { flags: "a" });
      this.files[stream] = f;
    }
    f.write(`${new Date().toISOString()}\t${line}\n`);
  }

  /** Flushes unterminated lines and closes the files. */
  async close(): Promise<void> {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream] !== "") {
        const rest = this.partial[stream];
        this.partial[stream] = "";
        this.line(stream, rest);
      }
    }
    await Promise.all(
      Object.values(this.files).map((f) => new Promise<void>((resolve) => f.end(() => resolve()))),
    );
  }
}

/** Parses a stored log file into lines, with or without their timestamps. */
export function parseLog(text: string): Array<{ time: string; line: string }> {
  const out: Array<{ time: string; line: string }> = [];
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    const tab = raw.indexOf("\t");
    out.push(tab > 0 ? { time: raw.slice(0, tab), line: raw.slice(tab + 1) } : { time: "", line: raw });
  }
  return out;
}
