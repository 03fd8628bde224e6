/** The runs page's cache: background reads that fail are logged, once while they keep failing. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MetadataProvider } from "../metadata/types.js";
import type { StorageBackend } from "../datastore/types.js";
import { RunIndex } from "./run-index.js";

/** Metadata that lists runs but cannot read them while `broken` is set. */
function flakyMetadata(state: { broken: boolean }): MetadataProvider {
  const methods: Record<string, (...args: unknown[]) => Promise<unknown>> = {
    listRuns: async () => ["2", "1"],
    listFlows: async () => ["F"],
    getRun: async () => {
      if (state.broken) throw new Error("the metadata store is unreachable");
      return undefined;
    },
    getRunEnd: async () => undefined,
  };
  return new Proxy({} as MetadataProvider, {
    get: (_t, name) => methods[String(name)] ?? (() => Promise.reject(new Error(`unexpected call ${String(name)}`))),
  });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

void describe("RunIndex", () => {
  void it("logs a failed background read of a flow's runs once, and again after it recovered and failed anew", async () => {
    const state = { broken: true };
    const logged: string[] = [];
    const storage = { root: "/nowhere" } as unknown as StorageBackend;
    const index = new RunIndex({ backends: { metadata: flakyMetadata(state), storage } }, (line) => logged.push(line));

    // An unfiltered page of no rows: the page itself reads nothing, the background warm-up reads both runs.
    const page = await index.page("F", {}, 0, 0);
    assert.equal(page.total, 2);
    await settle();
    assert.deepEqual(logged, ["UI: reading the runs of F in the background failed: the metadata store is unreachable (the runs page shows what could be read; each page view tries again)"]);
    await index.page("F", {}, 0, 0);
    await settle();
    assert.equal(logged.length, 1, "a failure that lasts is logged once");

    state.broken = false; // runs not written yet read as missing: a success
    await index.page("F", {}, 0, 0);
    await settle();
    state.broken = true;
    await index.page("F", {}, 0, 0);
    await settle();
    assert.equal(logged.length, 2, "a new failure after a success is logged again");
  });
});
