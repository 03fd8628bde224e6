/**
 * The metadata service's API under `/api/v1`: one entry per method and path, each with its
 * validated inputs and the store call it makes. Path segments are checked by kind before any
 * handler runs, so handlers only ever see checked values.
 */
import type * as http from "node:http";
import { systemNamespaceOf } from "../metadata/tags.js";
import type { RunRecord } from "../metadata/types.js";
import { AttemptStore, type AttemptKey, type Writer } from "./attempts.js";
import type { Auth } from "./auth.js";
import type { MetadataStore } from "./store.js";
import * as v from "./validate.js";
import { HttpError } from "./validate.js";

/** Checked path parameters by name (`flow`, `run`, ...). */
export type Params = Readonly<Record<string, string>>;
/** An answer: status and JSON body (none for 204). */
export type Reply = { status: number; body?: unknown };

/** One endpoint. */
export interface Route {
  readonly method: "GET" | "POST" | "PUT";
  readonly path: readonly string[];
  /** Whether the route reads a JSON body. */
  readonly body: boolean;
  handle(p: Params, body: unknown, req: http.IncomingMessage, auth: Auth): Promise<Reply>;
}

/** Validators for each `:name` path segment. */
const SEGMENT_CHECKS: Readonly<Record<string, (s: string) => unknown>> = {
  flow: v.flowName,
  run: v.runId,
  step: v.stepName,
  task: v.taskId,
  attempt: v.attemptNo,
  batch: v.batchNo,
};

const ok = (body: unknown): Reply => ({ status: 200, body });
const noContent: Reply = { status: 204 };

/** Who may write: the holder of the shared token writes as anyone, a per-user token as its user. */
const writerOf = (auth: Auth): Writer => (auth.kind === "user" ? auth.user : null);

/**
 * A new run as recorded: with a per-user token, under the token's user — the claimed user and
 * any `user:` system tag are replaced, so nobody can start runs in someone else's name.
 */
function asCaller(record: Omit<RunRecord, "runId">, auth: Auth): Omit<RunRecord, "runId"> {
  if (auth.kind !== "user") return record;
  const systemTags = [
    `user:${auth.user}`,
    ...record.systemTags.filter((t) => systemNamespaceOf(t) !== "user"),
  ];
  return { ...record, user: auth.user, systemTags };
}

function attemptKey(p: Params): AttemptKey {
  return {
    flow: p.flow!,
    runId: p.run!,
    step: p.step!,
    taskId: p.task!,
    attempt: Number(p.attempt),
  };
}

/** The service's routes over its stores. */
export function routes(store: MetadataStore, attempts: AttemptStore): Route[] {
  const run = ["flows", ":flow", "runs", ":run"];
  const task = [...run, "steps", ":step", "tasks", ":task"];
  const attempt = [...task, "attempts", ":attempt"];
  const get = (path: string[], handle: (p: Params, auth: Auth) => Promise<Reply>): Route => ({
    method: "GET",
    path,
    body: false,
    handle: (p, _body, _req, auth) => handle(p, auth),
  });
  const write = (
    method: "POST" | "PUT",
    path: string[],
    handle: Route["handle"],
    body = true,
  ): Route => ({ method, path, body, handle });
  return [
    get(["whoami"], async (_p, auth) =>
      ok(
        auth.kind === "user"
          ? { user: auth.user, auth: "user-token" }
          : { user: null, auth: "shared-token" },
      ),
    ),
    get(["flows"], async () => ok({ flows: await store.listFlows() })),
    get(["flows", ":flow", "runs"], async (p) => ok({ runs: await store.listRuns(p.flow!) })),
    write("POST", ["flows", ":flow", "runs"], async (p, body, req, auth) => {
      const key = v.idempotencyKey(req.headers["idempotency-key"]);
      const runId = await store.newRun(asCaller(v.newRunBody(p.flow!, body), auth), key);
      return { status: 201, body: { runId } };
    }),
    get(run, async (p) => {
      const view = await store.getRun(p.flow!, p.run!);
      if (!view) throw new HttpError(404, "not-found", `Run ${p.flow}/${p.run} does not exist`);
      return ok(view);
    }),
    write("PUT", [...run, "end"], async (p, body, _req, auth) => {
      await store.finishRun(p.flow!, p.run!, v.runEndBody(body), writerOf(auth));
      return noContent;
    }),
    write(
      "POST",
      [...run, "heartbeat"],
      async (p, _body, _req, auth) => {
        await store.heartbeat(p.flow!, p.run!, writerOf(auth));
        return noContent;
      },
      false,
    ),
    get([...run, "tags"], async (p) => ok(await store.getTags(p.flow!, p.run!))),
    write("POST", [...run, "tags"], async (p, body) =>
      ok({ tags: await store.updateTags(p.flow!, p.run!, v.tagUpdateBody(body)) }),
    ),
    get([...run, "steps"], async (p) => ok({ steps: await store.listSteps(p.flow!, p.run!) })),
    get([...run, "steps", ":step", "tasks"], async (p) =>
      ok({ tasks: await store.listTasks(p.flow!, p.run!, p.step!) }),
    ),
    get(task, async (p) => {
      const t = await store.getTask(p.flow!, p.run!, p.step!, p.task!);
      if (!t)
        throw new HttpError(
          404,
          "not-found",
          `Task ${p.flow}/${p.run}/${p.step}/${p.task} does not exist`,
        );
      return ok(t);
    }),
    write("PUT", [...attempt, "artifacts", ":batch"], async (p, body, _req, auth) => {
      await attempts.putArtifactBatch(
        attemptKey(p),
        Number(p.batch),
        v.artifactBatchBody(body),
        writerOf(auth),
      );
      return noContent;
    }),
    ...(["start", "end"] as const).map((side) =>
      write("PUT", [...attempt, side], async (p, body, _req, auth) => {
        const key = attemptKey(p);
        const record =
          side === "start"
            ? v.attemptStartBody(key.attempt, body)
            : v.attemptEndBody(key.attempt, body);
        await attempts.putAttempt(key, side, record, writerOf(auth));
        return noContent;
      }),
    ),
  ];
}

/** Finds the route for a path; throws 404 for an unknown path and 405 for a wrong method. */
export function match(
  table: readonly Route[],
  method: string,
  segments: readonly string[],
): { route: Route; params: Params } {
  let pathMatched = false;
  for (const route of table) {
    if (route.path.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const fits = route.path.every((part, i) => {
      const seg = segments[i]!;
      if (part.startsWith(":")) {
        params[part.slice(1)] = seg;
        return true;
      }
      return part === seg;
    });
    if (!fits) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    // Validate names only once the route is known, so the error names the right kind of field.
    for (const [name, value] of Object.entries(params)) SEGMENT_CHECKS[name]?.(value);
    return { route, params };
  }
  if (pathMatched)
    throw new HttpError(405, "method-not-allowed", `Method ${method} is not allowed on this path`);
  throw new HttpError(404, "no-such-endpoint", "No such endpoint");
}
