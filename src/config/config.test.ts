import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, describeConfig, loadConfig, parseS3Url } from "./index.js";

const homes: string[] = [];
after(() => {
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

/** A fresh home directory, optionally with config files (name -> JSON value or raw text). */
function home(files: Record<string, unknown> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-config-"));
  homes.push(dir);
  fs.mkdirSync(path.join(dir, ".metaflowconfig"));
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(
      path.join(dir, ".metaflowconfig", name),
      typeof content === "string" ? content : JSON.stringify(content),
    );
  }
  return dir;
}

const TOKEN = "tok-0123456789abcdef-SECRET-wxyz";

void describe("loadConfig", () => {
  void test("defaults without a file or variables", () => {
    const c = loadConfig({ USER: "ann" }, home());
    assert.equal(c.configFileFound, false);
    assert.deepEqual([c.datastore.value, c.datastore.source], ["local", "default"]);
    assert.equal(c.localRoot.value, undefined);
    assert.equal(c.s3Root.value, undefined);
    assert.equal(c.metadata.value, "local");
    assert.equal(c.serviceToken.value, undefined);
    assert.equal(c.s3Region.value, "us-east-1");
    assert.equal(c.s3RetryCount.value, 7);
    assert.deepEqual(c.s3Credentials.value, { kind: "chain" });
    assert.deepEqual([c.user.value, c.user.origin], ["ann", "env USER"]);
  });

  void test("precedence: default < file < env, each with its source", () => {
    const h = home({
      "config.json": {
        METAFLOW_DEFAULT_DATASTORE: "s3",
        METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/mf/",
        METAFLOW_DEFAULT_METADATA: "service",
        METAFLOW_SERVICE_URL: "http://file.example:8080/",
        METAFLOW_USER: "fileuser",
      },
    });
    const c = loadConfig({ METAFLOW_SERVICE_URL: "https://env.example", USER: "osuser" }, h);
    const file = path.join(h, ".metaflowconfig", "config.json");
    assert.equal(c.configFile, file);
    assert.deepEqual(
      [c.datastore.value, c.datastore.source, c.datastore.origin],
      ["s3", "file", file],
    );
    assert.equal(c.s3Root.value, "s3://team-bucket/mf", "trailing slash normalized");
    assert.equal(c.datatoolsS3Root.value, "s3://team-bucket/mf/datatools");
    assert.deepEqual([c.serviceUrl.value, c.serviceUrl.source], ["https://env.example", "env"]);
    assert.deepEqual([c.metadata.value, c.metadata.source], ["service", "file"]);
    assert.deepEqual(
      [c.user.value, c.user.source],
      ["fileuser", "file"],
      "METAFLOW_USER in the file beats USER",
    );
    assert.deepEqual([c.s3Region.value, c.s3Region.source], ["us-east-1", "default"]);
    const envUser = loadConfig({ METAFLOW_USER: "envuser", USER: "osuser" }, h);
    assert.deepEqual([envUser.user.value, envUser.user.source], ["envuser", "env"]);
  });

  void test("an empty variable counts as unset", () => {
    const h = home({ "config.json": { METAFLOW_DEFAULT_DATASTORE: "s3" } });
    assert.equal(loadConfig({ METAFLOW_DEFAULT_DATASTORE: "" }, h).datastore.value, "s3");
  });

  void test("METAFLOW_PROFILE selects config_<name>.json; a missing profile file is an error", () => {
    const h = home({
      "config.json": { METAFLOW_DEFAULT_METADATA: "local" },
      "config_team.json": {
        METAFLOW_DEFAULT_METADATA: "service",
        METAFLOW_SERVICE_URL: "http://svc:8080",
      },
    });
    const team = loadConfig({ METAFLOW_PROFILE: "team" }, h);
    assert.equal(team.profile, "team");
    assert.equal(team.metadata.value, "service");
    assert.equal(team.metadata.origin, path.join(h, ".metaflowconfig", "config_team.json"));
    assert.equal(loadConfig({}, h).metadata.value, "local");
    assert.throws(
      () => loadConfig({ METAFLOW_PROFILE: "nope" }, h),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.key === "METAFLOW_PROFILE" &&
        /config_nope\.json/.test(err.message),
    );
  });

  void test("METAFLOW_HOME replaces ~/.metaflowconfig", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-config-home-"));
    homes.push(dir);
    fs.writeFileSync(
      path.join(dir, "config.json"),
      JSON.stringify({ METAFLOW_S3_REGION: "eu-west-1" }),
    );
    const c = loadConfig({ METAFLOW_HOME: dir }, home());
    assert.equal(c.s3Region.value, "eu-west-1");
  });

  void test("an unknown key in the file fails, naming the key and the file, with a suggestion", () => {
    const h = home({ "config.json": { METAFLOW_DEFAULT_DATASTOR: "s3" } });
    assert.throws(
      () => loadConfig({}, h),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.key === "METAFLOW_DEFAULT_DATASTOR" &&
        err.message.includes(path.join(h, ".metaflowconfig", "config.json")) &&
        err.message.includes("Did you mean METAFLOW_DEFAULT_DATASTORE?"),
    );
    const param = home({ "config.json": { METAFLOW_RUN_ALPHA: "1" } });
    assert.throws(
      () => loadConfig({}, param),
      /parameter defaults come from the environment variable METAFLOW_RUN_ALPHA/,
    );
  });

  void test("unknown METAFLOW_ variables in the environment are ignored (other tools use them)", () => {
    const c = loadConfig({ METAFLOW_SOMETHING_ELSE: "x", METAFLOW_RUN_ALPHA: "0.5" }, home());
    assert.equal(c.datastore.value, "local");
  });

  void test("malformed values fail with the key and where it came from", () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        { METAFLOW_SERVICE_URL: "not a url" },
        "METAFLOW_SERVICE_URL",
        /http:\/\/ or https:\/\/ URL/,
      ],
      [
        { METAFLOW_S3_ENDPOINT_URL: "ftp://x" },
        "METAFLOW_S3_ENDPOINT_URL",
        /http:\/\/ or https:\/\/ URL/,
      ],
      [
        { METAFLOW_DATASTORE_SYSROOT_S3: "bucket/prefix" },
        "METAFLOW_DATASTORE_SYSROOT_S3",
        /s3:\/\/bucket\/prefix/,
      ],
      [
        { METAFLOW_DATASTORE_SYSROOT_S3: "s3://Bad_Bucket/x" },
        "METAFLOW_DATASTORE_SYSROOT_S3",
        /not a valid S3 bucket name/,
      ],
      [{ METAFLOW_DEFAULT_DATASTORE: "gcs" }, "METAFLOW_DEFAULT_DATASTORE", /one of 'local', 's3'/],
      [{ METAFLOW_S3_RETRY_COUNT: "many" }, "METAFLOW_S3_RETRY_COUNT", /integer from 1 to 100/],
      [
        { METAFLOW_DEFAULT_METADATA: { kind: "service" } },
        "METAFLOW_DEFAULT_METADATA",
        /must be a string/,
      ],
    ];
    for (const [content, key, pattern] of cases) {
      const h = home({ "config.json": content });
      assert.throws(
        () => loadConfig({}, h),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.key === key &&
          pattern.test(err.message) &&
          err.message.includes("config.json"),
        `${key}=${JSON.stringify(content)}`,
      );
    }
    assert.throws(
      () => loadConfig({ METAFLOW_SERVICE_URL: "localhost:8080" }, home()),
      (err: unknown) =>
        err instanceof ConfigError && err.where === "environment variable METAFLOW_SERVICE_URL",
    );
  });

  void test("a file that is not a JSON object fails, naming the file", () => {
    for (const text of ["{ not json", "[1, 2]", '"s3"']) {
      const h = home({ "config.json": text });
      assert.throws(
        () => loadConfig({}, h),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes(path.join(h, ".metaflowconfig", "config.json")),
      );
    }
  });

  void test("credentials: explicit profile > env keys > AWS_PROFILE > SDK chain; secrets never printed", () => {
    const keys = {
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "very-secret-key-123456",
    };
    const h = home();
    const env = loadConfig(keys, h).s3Credentials.value;
    assert.equal(env.kind, "env");
    assert.equal(env.kind === "env" && env.secretAccessKey.reveal(), "very-secret-key-123456");
    assert.doesNotMatch(
      JSON.stringify(env) + inspect(env) + String(env.kind === "env" && env.secretAccessKey),
      /very-secret/,
    );
    assert.deepEqual(loadConfig({ ...keys, METAFLOW_AWS_PROFILE: "team" }, h).s3Credentials.value, {
      kind: "profile",
      profile: "team",
    });
    assert.deepEqual(loadConfig({ AWS_PROFILE: "dev" }, h).s3Credentials.value, {
      kind: "profile",
      profile: "dev",
    });
  });

  void test("the service token is masked everywhere it could be printed", () => {
    const h = home({ "config.json": { METAFLOW_SERVICE_AUTH_TOKEN: TOKEN } });
    const c = loadConfig({}, h);
    assert.equal(c.serviceToken.value?.reveal(), TOKEN);
    const printed = [
      JSON.stringify(c),
      inspect(c, { depth: 10 }),
      String(c.serviceToken.value),
      JSON.stringify(describeConfig(c)),
    ].join("\n");
    assert.doesNotMatch(printed, /SECRET/);
    assert.match(printed, /\*\*\*\*wxyz/);
    // Metaflow's own name for it works too; the environment still wins over the file.
    const alias = loadConfig({ METAFLOW_SERVICE_AUTH_KEY: "from-env-0123456789" }, h);
    assert.deepEqual(
      [alias.serviceToken.value?.reveal(), alias.serviceToken.key],
      ["from-env-0123456789", "METAFLOW_SERVICE_AUTH_KEY"],
    );
  });

  void test("credentials inside URLs are masked: ?password= and user:password@", () => {
    const c = loadConfig(
      {
        METAFLOW_SERVICE_DATABASE_URL: "postgres://svc@db.internal/metaflow?sslmode=require&password=hunter2-secret",
        METAFLOW_SERVICE_URL: "https://ann:pw-secret@svc.example/?token=tok-secret",
        METAFLOW_S3_ENDPOINT_URL: "http://minio.internal:9000/?X-Amz-Signature=sig-secret",
      },
      home(),
    );
    assert.equal(c.serviceDatabaseUrl.value, "postgres://svc@db.internal/metaflow?sslmode=require&password=hunter2-secret");
    const printed = JSON.stringify(describeConfig(c));
    assert.doesNotMatch(printed, /secret/);
    assert.match(printed, /password=\*\*\*/);
    assert.match(printed, /sslmode=require/);
    assert.match(printed, /ann:\*\*\*@svc\.example/);
  });

  void test("warns when the service token sits in a config file other users can read", () => {
    const h = home({ "config.json": { METAFLOW_SERVICE_AUTH_TOKEN: TOKEN } });
    const file = path.join(h, ".metaflowconfig", "config.json");
    fs.chmodSync(file, 0o644);
    const warned = loadConfig({}, h).warnings;
    assert.equal(warned.length, 1);
    assert.ok(warned[0]!.includes(file), warned[0]);
    assert.match(warned[0]!, /METAFLOW_SERVICE_AUTH_TOKEN.*readable by other users.*chmod 600/);
    fs.chmodSync(file, 0o600);
    assert.deepEqual(loadConfig({}, h).warnings, []);
    fs.chmodSync(file, 0o644);
    assert.deepEqual(loadConfig({ METAFLOW_SERVICE_AUTH_TOKEN: "from-env-0123456789" }, h).warnings, [], "the token in the file is not used");
    const open = home({ "config.json": { METAFLOW_DEFAULT_DATASTORE: "local" } });
    fs.chmodSync(path.join(open, ".metaflowconfig", "config.json"), 0o644);
    assert.deepEqual(loadConfig({}, open).warnings, [], "a file without secrets may be shared");
  });

  void test("parseS3Url normalizes and rejects bad paths", () => {
    assert.equal(parseS3Url("s3://my-bucket"), "s3://my-bucket");
    assert.equal(parseS3Url("s3://my-bucket/a/b/"), "s3://my-bucket/a/b");
    assert.throws(() => parseS3Url("s3://my-bucket/a//b"), /empty, '\.' or '\.\.'/);
    assert.throws(() => parseS3Url("s3://my-bucket/../b"), /empty, '\.' or '\.\.'/);
  });
});

void describe("metaflow configure show", () => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const cli = (env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", path.join(repo, "src/cli/main.ts"), "configure", "show"],
      {
        cwd: repo,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", ...env },
      },
    );

  void test("prints every setting with its source and masks the token", () => {
    const h = home({
      "config.json": {
        METAFLOW_DEFAULT_DATASTORE: "s3",
        METAFLOW_DATASTORE_SYSROOT_S3: "s3://team-bucket/mf",
        METAFLOW_SERVICE_AUTH_TOKEN: TOKEN,
      },
    });
    const r = cli({ HOME: h, METAFLOW_SERVICE_URL: "http://svc.example:8080", USER: "ann" });
    assert.equal(r.status, 0, r.stderr);
    const line = (key: string) => r.stdout.split("\n").find((l) => l.startsWith(`${key} `)) ?? "";
    assert.match(line("METAFLOW_DEFAULT_DATASTORE"), /s3\s+file$/);
    assert.match(
      line("METAFLOW_SERVICE_URL"),
      /http:\/\/svc\.example:8080\s+env METAFLOW_SERVICE_URL$/,
    );
    assert.match(line("METAFLOW_DEFAULT_METADATA"), /local\s+default$/);
    assert.match(line("METAFLOW_SERVICE_AUTH_TOKEN"), /\*\*\*\*wxyz .*file$/);
    assert.match(
      r.stdout,
      new RegExp(`Config file: ${path.join(h, ".metaflowconfig", "config.json")}`),
    );
    assert.doesNotMatch(r.stdout + r.stderr, /SECRET/);
  });

  void test("masks a database password given as ?password= and warns about a readable token file", () => {
    const h = home({ "config.json": { METAFLOW_SERVICE_AUTH_TOKEN: TOKEN } });
    fs.chmodSync(path.join(h, ".metaflowconfig", "config.json"), 0o644);
    const r = cli({ HOME: h, METAFLOW_SERVICE_DATABASE_URL: "postgres://svc@db/metaflow?password=hunter2-SECRET" });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /SECRET/);
    assert.match(r.stdout, /METAFLOW_SERVICE_DATABASE_URL\s+postgres:\/\/svc@db\/metaflow\?password=\*\*\*/);
    assert.match(r.stderr, /^Warning: .*config\.json.*readable by other users/m);
    // Every command that opens the backends says it too, once.
    const runs = spawnSync(process.execPath, [path.join(repo, "bin/metaflow.js"), "runs", "NoSuchFlow"], {
      cwd: h,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", HOME: h },
    });
    assert.equal(runs.stderr.match(/^Warning: .*readable by other users/gm)?.length, 1, runs.stderr);
  });

  void test("exits non-zero with the key and file for a bad config file", () => {
    const h = home({ "config.json": { METAFLOW_SERVICE_URL: "nope" } });
    const r = cli({ HOME: h });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Bad configuration: METAFLOW_SERVICE_URL \(.*config\.json\)/);
  });
});
