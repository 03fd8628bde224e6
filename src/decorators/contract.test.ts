import assert from "node:assert/strict";
import { test } from "node:test";
import { parseWithFlag } from "./contract.js";

void test("--with values: plain, in double quotes (commas and spaces kept, quotes dropped), and JSON", () => {
  assert.deepEqual(parseWithFlag("retry"), { name: "retry", raw: {} });
  assert.deepEqual(parseWithFlag("retry:times=2,minutesBetweenRetries=0"), { name: "retry", raw: { times: "2", minutesBetweenRetries: "0" } });
  assert.deepEqual(parseWithFlag('slurm:extraArgs="--exclusive --nice=10",partition="a,b"'), {
    name: "slurm",
    raw: { extraArgs: "--exclusive --nice=10", partition: "a,b" },
  });
  assert.deepEqual(parseWithFlag('environment:vars={"A":"1,2","B":"x"}'), { name: "environment", raw: { vars: '{"A":"1,2","B":"x"}' } });
  assert.deepEqual(parseWithFlag('card:id="say \\"hi\\""'), { name: "card", raw: { id: 'say "hi"' } });
  assert.throws(() => parseWithFlag("retry:times"), /'times' is not key=value \(write --with retry:key=value,key2=value2\)/);
});
