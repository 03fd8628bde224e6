import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { UsageError } from "../errors.js";
import { ProductionTokenError, ProjectNameError } from "./errors.js";
import {
  deploymentName,
  newProductionToken,
  parseProjectOptions,
  productionNamespace,
  projectInfo,
  projectSystemTags,
  readKnownToken,
  recordFromTags,
  recordToTags,
  resolveProductionToken,
  storeKnownToken,
} from "./project.js";

void describe("@project names", () => {
  const recsys = parseProjectOptions({ name: "recsys" });

  void it("user, --branch and --production give the branch and the deployment name", () => {
    assert.deepEqual(projectInfo(recsys, "TrainFlow", "bob"), {
      projectName: "recsys",
      branchName: "user.bob",
      isProduction: false,
      projectFlowName: "recsys.user.bob.TrainFlow",
    });
    assert.equal(
      projectInfo(recsys, "TrainFlow", "bob", { branch: "new_model" }).projectFlowName,
      "recsys.test.new_model.TrainFlow",
    );
    const prod = projectInfo(recsys, "TrainFlow", "bob", { production: true });
    assert.equal(prod.projectFlowName, "recsys.prod.TrainFlow");
    assert.equal(prod.isProduction, true);
    assert.equal(
      projectInfo(recsys, "TrainFlow", "bob.smith@corp.com").branchName,
      "user.bob_smith_corp_com",
    );
    assert.deepEqual(projectSystemTags(prod), ["project:recsys", "project_branch:prod"]);
    assert.equal(deploymentName("TrainFlow", prod), "recsys.prod.TrainFlow");
    assert.equal(deploymentName("TrainFlow"), "TrainFlow");
  });

  void it("refuses bad names, saying what is allowed", () => {
    for (const bad of [
      { name: "RecSys" },
      { name: "1st" },
      { name: "rec-sys" },
      { name: "" },
      { name: "x".repeat(41) },
      {},
      null,
    ]) {
      assert.throws(
        () => parseProjectOptions(bad),
        (e: unknown) =>
          e instanceof ProjectNameError &&
          /@project\.name must be lowercase letters/.test(e.message),
      );
    }
    assert.throws(
      () => parseProjectOptions({ name: "a", branch: "b" }),
      /@project has no option 'branch'/,
    );
    assert.throws(
      () => projectInfo(recsys, "F", "bob", { branch: "a.b" }),
      /--branch must be letters, digits, _ or -.*got "a\.b"/,
    );
    assert.throws(
      () => projectInfo(recsys, "F", "bob", { branch: "x", production: true }),
      /Give --branch or --production, not both/,
    );
    assert.throws(() => projectInfo(recsys, "F", "@@@"), /cannot name a branch/);
    const long = projectInfo(
      parseProjectOptions({ name: "a".repeat(40) }),
      "VeryLongFlowNameThatGoesOnAndOn",
      "bob",
      { branch: "b".repeat(30) },
    );
    assert.throws(
      () => deploymentName("VeryLongFlowNameThatGoesOnAndOn", long),
      /has 108 characters; Step Functions allows 80\. Use a shorter project name or --branch/,
    );
    assert.throws(() => deploymentName("Bad Flow"), /characters Step Functions does not allow/);
  });
});

void describe("production tokens", () => {
  let n = 0;
  const gen = () => `tok${++n}`;

  void it("first create generates a token; the same user's redeploy keeps it", () => {
    const first = resolveProductionToken({ deployment: "TrainFlow", user: "alice" }, gen);
    assert.equal(first.generated, true);
    assert.deepEqual(first.record, { token: first.token, deployer: "alice" });
    // Redeploy by alice: the deployment's record and her stored token agree.
    const again = resolveProductionToken(
      { deployment: "TrainFlow", user: "alice", existing: first.record, known: first.token },
      gen,
    );
    assert.equal(again.token, first.token);
    assert.equal(again.generated, false);
    // Also from a machine without the stored token: she deployed it.
    assert.equal(
      resolveProductionToken(
        { deployment: "TrainFlow", user: "alice", existing: first.record },
        gen,
      ).token,
      first.token,
    );
    assert.equal(productionNamespace(first.token), `production:${first.token}`);
  });

  void it("another user is refused without the token, and allowed with --authorize", () => {
    const existing = { token: "secret1", deployer: "alice" };
    assert.throws(
      () =>
        resolveProductionToken({ deployment: "recsys.prod.TrainFlow", user: "bob", existing }, gen),
      (e: unknown) => {
        assert.ok(e instanceof ProductionTokenError);
        assert.match(e.headline, /Not authorized to deploy recsys\.prod\.TrainFlow/);
        assert.match(e.message, /deployed by alice.*--authorize TOKEN.*--branch NAME/);
        return true;
      },
    );
    assert.throws(
      () =>
        resolveProductionToken({ deployment: "d", user: "bob", existing, authorize: "wrong" }, gen),
      /--authorize wrong is not the production token of d; ask alice/,
    );
    assert.throws(
      () => resolveProductionToken({ deployment: "d", user: "bob", existing, known: "stale" }, gen),
      /deployed by alice/,
    );
    // An empty token is refused, deployed over or not (it would be the namespace `production:`).
    for (const blank of ["", "  "]) {
      for (const over of [existing, undefined]) {
        assert.throws(
          () =>
            resolveProductionToken(
              {
                deployment: "d",
                user: "bob",
                ...(over ? { existing: over } : {}),
                authorize: blank,
              },
              gen,
            ),
          (e: unknown) => {
            assert.ok(e instanceof UsageError);
            assert.match(
              e.message,
              new RegExp(
                `--authorize needs the production token of d \\(its deployer has it\\), got "${blank}"`,
              ),
            );
            return true;
          },
        );
      }
    }
    // A --new-token does not bypass the check.
    assert.throws(
      () => resolveProductionToken({ deployment: "d", user: "bob", existing, newToken: true }, gen),
      /deployed by alice/,
    );
    const ok = resolveProductionToken(
      { deployment: "d", user: "bob", existing, authorize: "secret1" },
      gen,
    );
    assert.deepEqual(ok, {
      token: "secret1",
      record: { token: "secret1", deployer: "bob" },
      generated: false,
    });
    // Once authorized, bob's machine knows the token: his next create needs no --authorize.
    assert.equal(
      resolveProductionToken(
        { deployment: "d", user: "bob", existing: ok.record, known: "secret1" },
        gen,
      ).token,
      "secret1",
    );
  });

  void it("--new-token starts a new namespace; a recreated deployment keeps the known token", () => {
    const existing = { token: "old", deployer: "alice" };
    const fresh = resolveProductionToken(
      { deployment: "d", user: "alice", existing, known: "old", newToken: true },
      gen,
    );
    assert.equal(fresh.generated, true);
    assert.notEqual(fresh.token, "old");
    const recreated = resolveProductionToken({ deployment: "d", user: "alice", known: "old" }, gen);
    assert.deepEqual(recreated, {
      token: "old",
      record: { token: "old", deployer: "alice" },
      generated: false,
    });
  });

  void it("tokens look like Metaflow's and are tags-safe; records round-trip through tags", () => {
    const t = newProductionToken("recsys.prod.TrainFlow");
    assert.match(t, /^trainflow-[a-z0-9]{12}$/);
    assert.notEqual(newProductionToken("X"), newProductionToken("X"));
    const record = { token: t, deployer: "alice" };
    assert.deepEqual(recordFromTags(recordToTags(record)), record);
    assert.equal(recordFromTags([{ key: "other", value: "x" }]), undefined);
  });

  void it("the known token survives between creates in the user's config directory", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "mf-tokens-"));
    try {
      assert.equal(readKnownToken(home, "recsys.prod.TrainFlow"), undefined);
      storeKnownToken(home, "recsys.prod.TrainFlow", "trainflow-abc");
      assert.equal(readKnownToken(home, "recsys.prod.TrainFlow"), "trainflow-abc");
      assert.equal(
        fs.statSync(path.join(home, "tokens", "recsys.prod.TrainFlow")).mode & 0o777,
        0o600,
      );
      storeKnownToken(home, "recsys.prod.TrainFlow", "trainflow-def");
      assert.equal(readKnownToken(home, "recsys.prod.TrainFlow"), "trainflow-def");
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
