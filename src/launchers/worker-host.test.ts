import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkerHost } from "./worker-host.js";

void test("a worker process that cannot be spawned ends its host instead of leaving it waiting", async () => {
  const execPath = process.execPath;
  process.execPath = "/nonexistent/node";
  let host: WorkerHost;
  try {
    host = new WorkerHost(false, [], { stray: () => undefined, late: () => undefined });
  } finally {
    process.execPath = execPath;
  }
  await assert.rejects(host.ready, /could not start a worker process: .*ENOENT/);
  const exit = await host.exited;
  assert.equal(exit.code, null);
  assert.equal(host.isAlive, false);
});
