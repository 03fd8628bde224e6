/** The browser side of the UI's JSON API: types of its answers and a fetch helper. */

/** The path the UI is served under (`/` or `/ui/`), from the page shell. */
export const BASE = document.querySelector<HTMLMetaElement>("meta[name='mf-base']")?.content ?? "/";
/** `team` behind the service's token, `local` for `metaflow ui`. */
export const MODE = document.querySelector<HTMLMetaElement>("meta[name='mf-mode']")?.content ?? "local";
/** The signed-in user of the team UI (undefined with the shared token or locally). */
export const USER = document.querySelector<HTMLMetaElement>("meta[name='mf-user']")?.content;

export type Status = "running" | "completed" | "failed";

export interface RunSummary {
  flow: string;
  id: string;
  user: string;
  status: Status;
  createdAt: number;
  finishedAt?: number;
  tags: string[];
  systemTags: string[];
  failedStep?: string;
}

export interface FlowsAnswer {
  flows: { name: string; runs: number; latest?: RunSummary }[];
}

export interface RunPage {
  total: number;
  runs: RunSummary[];
  users: string[];
}

export interface StepView {
  name: string;
  kind: string;
  out: string[];
  doc: string;
  status: "pending" | Status;
  counts: { total: number; running: number; completed: number; failed: number };
}

export interface TaskSummary {
  step: string;
  id: string;
  status: Status;
  startedAt: number;
  finishedAt?: number;
  attempts: number;
  index?: number;
}

export interface RunView {
  run: RunSummary;
  parameters: Record<string, unknown>;
  flowFile: string;
  exception?: { name: string; message: string };
  steps: StepView[];
  graphProblem?: string;
  tasks: TaskSummary[];
}

export interface TaskView {
  pathspec: string;
  status: Status;
  index?: number;
  parents: string[];
  attempts: { attempt: number; status: string; startedAt: number; finishedAt?: number; error?: { name: string; message: string; stack?: string }; clonedFrom?: string }[];
  artifacts?: { name: string; type: string; size: number; hash: string }[];
  cards: { index: number; id?: string; type: string; attempt: number; live: boolean }[];
}

export interface LogLine {
  stream: "stdout" | "stderr";
  time: string;
  line: string;
  attempt: number;
}

/** An error answered by the API, with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The URL of an API path (segments are encoded). */
export function apiUrl(...segments: (string | number)[]): string {
  return `${BASE}api/${segments.map((s) => encodeURIComponent(String(s))).join("/")}`;
}

/** GETs (or POSTs) JSON; a 401 in the team UI goes to the sign-in page. */
export async function fetchJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { credentials: "same-origin", ...init });
  if (res.status === 401 && MODE === "team") {
    location.href = `${BASE}login`;
    throw new ApiError(401, "Sign in first");
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!res.ok) throw new ApiError(res.status, body.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}
