import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { LocalStorage } from "./local.js";
import { AttemptLogs, logFileName } from "./logs.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-logs-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

void test("a log that cannot be stored is said once on the console and never stops the task's output", async () => {
  const root = path.join(dir, "blocked");
  fs.mkdirSync(root);
  // A file where the task's log directory would go: every attempt to store the log fails.
  fs.writeFileSync(path.join(root, "flows"), "not a directory");
  const shown: string[] = [];
  const logs = new AttemptLogs(new LocalStorage(root), "flows/F/1/start/1", 0, (stream, line) => shown.push(`${stream}: ${line}`));
  logs.write("stdout", "first\nsecond\n");
  logs.line("stderr", "an error line");
  await logs.close();
  assert.deepEqual(shown.filter((l) => !l.includes("Warning")), ["stdout: first", "stdout: second", "stderr: an error line"]);
  const warnings = shown.filter((l) => l.includes("Warning"));
  assert.equal(warnings.length, 1, shown.join("\n"));
  assert.match(warnings[0]!, /cannot store this task's log under flows\/F\/1\/start\/1: .*(ENOTDIR|EEXIST)/);
});

void test("a log stored normally holds every line, unterminated last line included", async () => {
  const root = path.join(dir, "ok");
  const storage = new LocalStorage(root);
  const logs = new AttemptLogs(storage, "flows/F/1/start/1", 0, () => undefined);
  logs.write("stdout", "one\ntwo");
  await logs.close();
  const text = fs.readFileSync(storage.localPath(`flows/F/1/start/1/${logFileName(0, "stdout")}`), "utf8");
  assert.deepEqual(text.trim().split("\n").map((l) => l.split("\t")[1]), ["one", "two"]);
});
