/** Opening the configured backends: a bad setting is reported before anything is opened. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { openBackends } from "../src/backends.js";
import { ConfigError } from "../src/config/index.js";

void test("service metadata without METAFLOW_SERVICE_URL fails before an S3 client is made", () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "mf-backends-"));
  // Making an S3 transport sets this (see S3Transport's constructor): it witnesses that none was made.
  const witness = "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED";
  const before = process.env[witness];
  delete process.env[witness];
  try {
    assert.throws(
      () =>
        openBackends({
          cwd,
          env: {
            HOME: cwd,
            METAFLOW_DEFAULT_DATASTORE: "s3",
            METAFLOW_DATASTORE_SYSROOT_S3: "s3://bucket/prefix",
            METAFLOW_S3_CACHE_DIR: path.join(cwd, "cache"),
            METAFLOW_DEFAULT_METADATA: "service",
          },
        }),
      (err: unknown) => err instanceof ConfigError && err.key === "METAFLOW_SERVICE_URL",
    );
    assert.equal(process.env[witness], undefined, "no S3 client may be opened for a configuration that is refused");
  } finally {
    if (before === undefined) delete process.env[witness];
    else process.env[witness] = before;
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});
