/**
 * A separate "user" process for the service tests: it reaches the service only through
 * `ServiceMetadata`, configured from the environment like a user's machine would be.
 *
 *   service-user.ts run FLOW   records a finished run as $METAFLOW_USER, prints {"runId"}
 *   service-user.ts list FLOW  prints the user of every run of FLOW, newest first
 *   service-user.ts hang FLOW  starts a run, prints {"runId"}, then waits to be killed
 */
import { currentUser } from "../../src/config.js";
import { ServiceMetadata } from "../../src/metadata/service.js";

const [mode, flow = "SharedFlow"] = process.argv.slice(2);
const provider = new ServiceMetadata({
  url: process.env.METAFLOW_SERVICE_URL ?? "",
  token: process.env.METAFLOW_SERVICE_AUTH_TOKEN ?? "",
  heartbeatIntervalMs: Number(process.env.HEARTBEAT_MS ?? 5000),
});
const user = currentUser();
const record = {
  flow,
  user,
  createdAt: Date.now(),
  parameters: {},
  parameterRefs: [],
  systemTags: [`user:${user}`],
  tags: [],
  codePackage: "0".repeat(64),
  flowFile: "shared.ts",
  className: flow,
};

if (mode === "run") {
  const runId = await provider.newRun(record);
  await provider.startAttempt(flow, runId, "start", "1", {
    attempt: 0,
    startedAt: Date.now(),
    pid: process.pid,
    parents: [],
    frames: [],
  });
  await provider.endAttempt(flow, runId, "start", "1", {
    attempt: 0,
    finishedAt: Date.now(),
    status: "completed",
    artifacts: [],
  });
  await provider.finishRun(flow, runId, { status: "completed", finishedAt: Date.now() });
  process.stdout.write(`${JSON.stringify({ runId })}\n`);
} else if (mode === "list") {
  const users = [];
  for (const id of await provider.listRuns(flow))
    users.push((await provider.getRun(flow, id))?.user);
  process.stdout.write(`${JSON.stringify({ users })}\n`);
} else if (mode === "hang") {
  const runId = await provider.newRun(record);
  process.stdout.write(`${JSON.stringify({ runId })}\n`);
  // The heartbeat timer is unref'd, so something else must keep this "scheduler" alive.
  setInterval(() => undefined, 60_000);
} else {
  throw new Error(`unknown mode ${mode}`);
}
