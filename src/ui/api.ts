/**
 * The UI's JSON API (and card pages), read through the client: `api/flows`, `api/flows/F/runs`,
 * `api/runs/F/R` (+ `tags`), `api/tasks/F/R/S/T` (+ `logs`, `logs/stream`, `artifacts/NAME`,
 * `artifacts/NAME/download`) and `cards/F/R/S/T/INDEX`.
 */
import { createHash } from "node:crypto";
import type * as http from "node:http";
import { pickCard } from "../client/cards.js";
import type { ClientOptions } from "../client/context.js";
import { Metaflow, Run, Task } from "../client/objects.js";
import { parsePathspec } from "../client/pathspec.js";
import type { UiCaller } from "./auth.js";
import { RunIndex, summarize, type RunFilter } from "./run-index.js";
import { RunViews } from "./run-view.js";
import { artifactPreview, sendArtifact, streamLogs, taskView } from "./task-view.js";
import { BASE_HEADERS, intParam, readJsonObject, sendBody, sendJson, UiHttpError } from "./http.js";

/** Policy of a card page: scripts only as the card's own policy allows, in a sandbox with an opaque origin. */
const CARD_CSP = "sandbox allow-scripts; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** Answers API and card requests. */
export class UiApi {
  private readonly index: RunIndex;
  private readonly views = new RunViews();

  constructor(
    private readonly client: ClientOptions,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.index = new RunIndex(client, log);
  }

  /** Handles `segments` (the path after the base); returns false when the path is not the API's. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, segments: readonly string[], query: URLSearchParams, signal: AbortSignal, caller?: UiCaller): Promise<boolean> {
    const [area, ...rest] = segments;
    const method = req.method ?? "GET";
    if (area === "cards" && rest.length === 5) {
      onlyGet(method);
      await this.card(req, res, rest, query);
      return true;
    }
    if (area !== "api") return false;
    const [kind, ...args] = rest;
    if (kind === "flows" && args.length === 0) {
      onlyGet(method);
      sendJson(res, 200, await this.flows());
    } else if (kind === "flows" && args.length === 2 && args[1] === "runs") {
      onlyGet(method);
      parsePathspec(args[0], "flow");
      sendJson(res, 200, await this.index.page(args[0]!, runFilter(query), intParam(query, "offset", 0, 1e9), Math.max(1, intParam(query, "limit", 50, 500))));
    } else if (kind === "runs" && args.length === 2) {
      onlyGet(method);
      const run = await Run.get(parsePathspec(args.join("/"), "run").join("/"), this.client);
      this.index.update(summarize(run));
      sendJson(res, 200, await this.views.view(run));
    } else if (kind === "runs" && args.length === 3 && args[2] === "tags") {
      if (method !== "POST") throw new UiHttpError(405, "method-not-allowed", "Edit tags with POST");
      sendJson(res, 200, await this.editTags(req, args[0]!, args[1]!, caller));
    } else if (kind === "tasks" && args.length >= 4) {
      onlyGet(method);
      await this.task(req, res, args, query, signal);
    } else {
      throw new UiHttpError(404, "no-such-endpoint", "No such endpoint");
    }
    return true;
  }

  private async flows(): Promise<unknown> {
    const flows = await new Metaflow(this.client).flows();
    return {
      flows: await Promise.all(
        flows.map(async (f) => {
          const o = await this.index.overview(f.name);
          return { name: f.name, runs: o.count, latest: o.latest };
        }),
      ),
    };
  }

  private async editTags(req: http.IncomingMessage, flow: string, runId: string, caller: UiCaller | undefined): Promise<unknown> {
    const { add, remove } = tagEdit(await readJsonObject(req));
    const run = await Run.get(parsePathspec(`${flow}/${runId}`, "run").join("/"), this.client);
    await run.replaceTags(remove, add);
    // The tag API records no author: the service's log says who changed what.
    if (caller) this.log(`UI: tags of ${flow}/${runId} edited by ${caller.user === undefined ? "the shared token" : `user ${caller.user}`}: +${JSON.stringify(add)} -${JSON.stringify(remove)}`);
    const summary = summarize(await run.refresh());
    this.index.update(summary);
    return summary;
  }

  private async task(req: http.IncomingMessage, res: http.ServerResponse, args: readonly string[], query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const pathspec = parsePathspec(args.slice(0, 4).join("/"), "task").join("/");
    const [what, name, action] = args.slice(4);
    const task = await Task.get(pathspec, this.client);
    const attempt = query.has("attempt") ? intParam(query, "attempt", 0, 1000) : undefined;
    if (what === undefined) {
      sendJson(res, 200, await taskView(task));
    } else if (what === "logs" && name === undefined) {
      sendJson(res, 200, { lines: await task.logs(attempt === undefined ? {} : { attempt }) });
    } else if (what === "logs" && name === "stream" && action === undefined) {
      await streamLogs(req, res, task, attempt, signal);
    } else if (what === "artifacts" && name !== undefined && action === undefined) {
      sendJson(res, 200, await artifactPreview(task.artifact(name)));
    } else if (what === "artifacts" && name !== undefined && action === "download") {
      await sendArtifact(res, task.artifact(name));
    } else {
      throw new UiHttpError(404, "no-such-endpoint", "No such endpoint");
    }
  }

  /** A card page, with an ETag so a live card is re-fetched only when it changed. */
  private async card(req: http.IncomingMessage, res: http.ServerResponse, args: readonly string[], query: URLSearchParams): Promise<void> {
    const pathspec = parsePathspec(args.slice(0, 4).join("/"), "task").join("/");
    if (!/^\d{1,6}$/.test(args[4]!)) throw new UiHttpError(400, "invalid-input", `A card is addressed by its position, a whole number; got ${JSON.stringify(args[4]!.slice(0, 40))}`);
    const task = await Task.get(pathspec, this.client);
    const cards = (await task.cards()).filter((c) => c.index === Number(args[4]) && (!query.has("attempt") || c.attempt === intParam(query, "attempt", 0, 1000)));
    const card = pickCard(cards, pathspec);
    const html = await card.html();
    const etag = `"${createHash("sha1").update(html).digest("base64url")}"`;
    const headers = { "content-security-policy": CARD_CSP, etag, "x-metaflow-card-live": String(card.live) };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { ...BASE_HEADERS, ...headers }).end();
      return;
    }
    sendBody(res, 200, "text/html; charset=utf-8", html, headers);
  }
}

/** The tags a tag-edit body `{ add?, remove? }` adds and removes; 400 for other keys or an empty edit. */
function tagEdit(body: Record<string, unknown>): { add: string[]; remove: string[] } {
  const unknown = Object.keys(body).filter((k) => k !== "add" && k !== "remove");
  if (unknown.length > 0) {
    throw new UiHttpError(400, "invalid-input", `A tag edit takes only "add" and "remove" (lists of tags); unknown key${unknown.length > 1 ? "s" : ""}: ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(", ")}`);
  }
  const list = (field: "add" | "remove"): string[] => {
    const v = body[field] ?? [];
    if (!Array.isArray(v) || v.some((t) => typeof t !== "string") || v.length > 50) throw new UiHttpError(400, "invalid-input", `body.${field} must be a list of at most 50 tags (strings)`);
    return v as string[];
  };
  const [add, remove] = [list("add"), list("remove")];
  if (add.length === 0 && remove.length === 0) throw new UiHttpError(400, "invalid-input", `A tag edit needs a tag in "add" or "remove"; both lists are empty`);
  return { add, remove };
}

function onlyGet(method: string): void {
  if (method !== "GET" && method !== "HEAD") throw new UiHttpError(405, "method-not-allowed", `Method ${method} is not allowed here; the UI's API is read-only except tags`);
}

function runFilter(q: URLSearchParams): RunFilter {
  const status = q.get("status") || undefined;
  if (status !== undefined && !["running", "completed", "failed"].includes(status)) {
    throw new UiHttpError(400, "invalid-input", `Query parameter status must be running, completed or failed, got ${JSON.stringify(status.slice(0, 40))}`);
  }
  const user = q.get("user") || undefined;
  const tag = q.get("tag") || undefined;
  return { ...(user ? { user } : {}), ...(tag ? { tag } : {}), ...(status ? { status: status as RunFilter["status"] & string } : {}) };
}
