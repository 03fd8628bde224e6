/**
 * `@schedule({ cron, timezone } | { daily } | { hourly } | { weekly })`: when a deployed flow runs
 * by itself (a flow decorator; `step-functions create` reads it). Standard five-field cron (or a shortcut) is
 * turned into the six-field syntax of Amazon EventBridge Scheduler, which, unlike classic
 * EventBridge rules (UTC only), also takes the time zone: a schedule at 03:00 Europe/Amsterdam
 * stays at 03:00 local time across daylight-saving changes.
 */
import { MetaflowError } from "../errors.js";
import { flowDecorator } from "./make.js";

/** A `@schedule` expression or option is not valid; `reason` names the bad field. */
export class ScheduleError extends MetaflowError {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super("schedule", `Bad @schedule ${input}`, `@schedule ${input}: ${reason}`);
  }
}

/** Options of `@schedule`: exactly one of `cron`, `daily`, `hourly`, `weekly`, and optionally a time zone. */
export interface ScheduleOptions {
  /** Standard cron, `minute hour day-of-month month day-of-week` (or AWS's six fields, passed through after checks). */
  readonly cron?: string;
  /** Every day at 00:00. */
  readonly daily?: boolean;
  /** Every hour at minute 0. */
  readonly hourly?: boolean;
  /** Every Sunday at 00:00. */
  readonly weekly?: boolean;
  /** IANA time zone the schedule is read in, e.g. `Europe/Amsterdam`. @default "UTC" */
  readonly timezone?: string;
}

/** What `step-functions create` gives EventBridge Scheduler. */
export interface ScheduleSpec {
  /** `cron(...)` in AWS's six-field syntax. */
  readonly expression: string;
  /** IANA time zone (`ScheduleExpressionTimezone`). */
  readonly timezone: string;
}

const SHORTCUTS: Readonly<Record<string, string>> = {
  hourly: "0 * * * ? *",
  daily: "0 0 * * ? *",
  weekly: "0 0 ? * SUN *",
};

const MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/**
 * The EventBridge Scheduler expression of `@schedule` options; throws a ScheduleError naming the
 * bad field and why.
 * @example
 * scheduleSpec({ cron: "0 3 * * 1-5", timezone: "Europe/Amsterdam" });
 * // { expression: "cron(0 3 ? * 2-6 *)", timezone: "Europe/Amsterdam" }
 */
export function scheduleSpec(options: ScheduleOptions): ScheduleSpec {
  const show = JSON.stringify(options);
  if (typeof options !== "object" || options === null)
    throw new ScheduleError(String(options), "give an object such as { daily: true }");
  const known = ["cron", "daily", "hourly", "weekly", "timezone"];
  for (const k of Object.keys(options)) {
    if (!known.includes(k))
      throw new ScheduleError(show, `unknown option '${k}'; the options are ${known.join(", ")}`);
  }
  for (const k of ["daily", "hourly", "weekly"] as const) {
    if (options[k] !== undefined && typeof options[k] !== "boolean") {
      throw new ScheduleError(
        show,
        `${k} must be true or false, got ${JSON.stringify(options[k])}`,
      );
    }
  }
  const chosen = (["cron", "daily", "hourly", "weekly"] as const).filter(
    (k) => options[k] !== undefined && options[k] !== false,
  );
  if (chosen.length !== 1) {
    throw new ScheduleError(
      show,
      `give exactly one of cron, daily, hourly or weekly${chosen.length ? ` (got ${chosen.join(" and ")})` : ""}`,
    );
  }
  const timezone = checkTimezone(show, options.timezone);
  const kind = chosen[0]!;
  if (kind !== "cron") return { expression: `cron(${SHORTCUTS[kind]})`, timezone };
  if (typeof options.cron !== "string")
    throw new ScheduleError(
      show,
      `cron must be a string such as "0 3 * * *", got ${JSON.stringify(options.cron)}`,
    );
  return { expression: `cron(${toAwsCron(options.cron)})`, timezone };
}

function checkTimezone(show: string, tz: unknown): string {
  if (tz === undefined) return "UTC";
  if (typeof tz !== "string" || tz.trim() === "")
    throw new ScheduleError(
      show,
      `timezone must be an IANA name such as "Europe/Amsterdam", got ${JSON.stringify(tz)}`,
    );
  try {
    // Throws a RangeError for a zone the ICU time-zone database does not know.
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new ScheduleError(
      show,
      `unknown timezone ${JSON.stringify(tz)}; use an IANA name such as "Europe/Amsterdam" or "America/New_York"`,
    );
  }
  return tz;
}

interface Field {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const MINUTE: Field = { name: "minute", min: 0, max: 59 };
const HOUR: Field = { name: "hour", min: 0, max: 23 };
const DOM: Field = { name: "day-of-month", min: 1, max: 31 };
const MONTH: Field = {
  name: "month",
  min: 1,
  max: 12,
  names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/** Standard cron: 0 (or 7) is Sunday. */
const DOW: Field = {
  name: "day-of-week",
  min: 0,
  max: 7,
  names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEAR: Field = { name: "year", min: 1970, max: 2199 };

/**
 * Converts a cron expression to AWS's six fields (`minute hour day-of-month month day-of-week year`):
 * five standard fields get a `?` in the unused day field and the year `*`; day-of-week numbers move
 * from 0-7 (Sunday = 0 or 7) to AWS's 1-7 (Sunday = 1). Six fields are taken as AWS syntax and
 * checked. Throws a ScheduleError with the reason for anything AWS cannot run.
 */
export function toAwsCron(expression: string): string {
  const show = JSON.stringify(expression);
  const text = MACROS[expression.trim().toLowerCase()] ?? expression.trim();
  const fields = text.split(/\s+/);
  if (fields.length === 6) return checkAwsCron(show, fields);
  if (fields.length !== 5) {
    throw new ScheduleError(
      `cron ${show}`,
      `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  }
  const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string];
  const fail = (reason: string): never => {
    throw new ScheduleError(`cron ${show}`, reason);
  };
  for (const [f, v] of [
    [MINUTE, minute],
    [HOUR, hour],
    [DOM, dom],
    [MONTH, month],
  ] as const)
    values(f, v, fail);
  const domAny = dom === "*" || dom === "?";
  const dowAny = dow === "*" || dow === "?";
  if (!domAny && !dowAny) {
    fail(
      `both day-of-month (${dom}) and day-of-week (${dow}) are restricted; standard cron runs on days matching either, which AWS cannot express. Restrict only one of them (or deploy two schedules)`,
    );
  }
  const awsDow = dowAny ? "?" : awsWeekdays(values(DOW, dow, fail));
  const awsDom = dowAny ? (dom === "?" ? "*" : dom) : "?";
  return [minute, hour, awsDom, month.toUpperCase(), awsDow, "*"].join(" ");
}

/** Day-of-week values (0-6, Sunday = 0) as AWS's 1-7 in ranges: `2-6`, `1,7`. */
function awsWeekdays(days: ReadonlySet<number>): string {
  const aws = [...new Set([...days].map((d) => (d % 7) + 1))].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < aws.length;) {
    let j = i;
    while (j + 1 < aws.length && aws[j + 1] === aws[j]! + 1) j++;
    parts.push(j - i >= 2 ? `${aws[i]}-${aws[j]}` : aws.slice(i, j + 1).join(","));
    i = j + 1;
  }
  return parts.join(",");
}

/** The values a standard field stands for; `fail` is called with the reason when it is not valid. */
function values(f: Field, text: string, fail: (reason: string) => never): Set<number> {
  const out = new Set<number>();
  for (const item of text.split(",")) {
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
    if (!m)
      fail(
        `${f.name} field '${text}': '${item}' is not a value, a range (a-b), a list (a,b) or a step (*/n)`,
      );
    const step = m![2] === undefined ? 1 : Number(m![2]);
    if (step < 1 || step > f.max)
      fail(`${f.name} field '${text}': the step /${m![2]} must be from 1 to ${f.max}`);
    let lo = f.min;
    let hi = f.max;
    if (m![1] !== "*") {
      const [a, b] = m![1]!.split("-");
      lo = value(f, a!, text, fail);
      hi = b === undefined ? (m![2] === undefined ? lo : f.max) : value(f, b, text, fail);
      if (hi < lo) fail(`${f.name} field '${text}': the range ${m![1]} runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(f: Field, token: string, text: string, fail: (reason: string) => never): number {
  const named = f.names?.indexOf(token.toUpperCase()) ?? -1;
  if (named >= 0) return f === MONTH ? named + 1 : named;
  if (!/^\d+$/.test(token)) {
    fail(
      `${f.name} field '${text}': '${token}' is not a number${f.names ? ` or a name (${f.names.join(", ")})` : ""}; for L, W or # use AWS's six-field syntax`,
    );
  }
  const n = Number(token);
  if (n < f.min || n > f.max)
    fail(`${f.name} field '${text}': ${n} is out of range ${f.min}-${f.max}`);
  return n;
}

/** Checks an expression already in AWS's six-field syntax and returns it normalised. */
function checkAwsCron(show: string, fields: string[]): string {
  const [minute, hour, dom, month, dow, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const fail = (reason: string): never => {
    throw new ScheduleError(
      `cron ${show}`,
      `${reason} (six fields are read as AWS syntax: minute hour day-of-month month day-of-week year)`,
    );
  };
  if ((dom === "?") === (dow === "?")) {
    fail(`exactly one of day-of-month (${dom}) and day-of-week (${dow}) must be '?'`);
  }
  for (const [f, v] of [
    [MINUTE, minute],
    [HOUR, hour],
    [MONTH, month],
    [YEAR, year],
  ] as const)
    values(f, v, fail);
  // AWS's own extensions in the day fields (L, W, #) are left for AWS to judge.
  if (dom !== "?" && !/^[0-9LW*,/-]+$/.test(dom)) fail(`day-of-month field '${dom}' is not valid`);
  if (dow !== "?" && !/^[0-9A-Za-z*,/#L-]+$/.test(dow))
    fail(`day-of-week field '${dow}' is not valid`);
  return [minute, hour, dom, month.toUpperCase(), dow.toUpperCase(), year].join(" ");
}

/**
 * Runs the deployed flow on a schedule: `step-functions create` turns it into an EventBridge
 * Scheduler schedule; a bad expression is refused where the decorator is written. Locally it does
 * nothing.
 * @example @schedule({ cron: "0 3 * * *", timezone: "Europe/Amsterdam" })
 */
export const schedule = flowDecorator<ScheduleOptions, ScheduleOptions>({
  name: "schedule",
  help: "schedule({ cron, timezone } | { daily } | { hourly } | { weekly }): when the deployed flow runs",
  parse(raw) {
    scheduleSpec(raw as ScheduleOptions);
    return { ...raw } as ScheduleOptions;
  },
});
