/**
 * The command line every Batch task state runs: `metaflow task ...`, one attempt of one task of a
 * deployed run. The flags are the `metaflow task` contract (src/task/command.ts, the same one a
 * Slurm job uses); here they become a `States.Array(...)` expression whose per-execution values
 * (run id, task id, attempt) Step Functions fills in.
 */
import { runFailedArgv, taskArgv, type TaskCommandTemplate } from "../../task/command.js";

/** A value the state machine evaluates (a JSONPath or an intrinsic function), not a literal. */
export interface Expr {
  readonly expr: string;
}

/** A string given literally (known when deploying) or evaluated by the state machine. */
export type Val = string | Expr;

/** The program the container runs before `task`. @default ["metaflow"] */
export const DEFAULT_ENTRYPOINT: readonly string[] = ["metaflow"];

/** Quotes a literal for an intrinsic function: `'`, `{`, `}` and `\` are escaped. */
export function intrinsicLiteral(s: string): string {
  return `'${s.replace(/[\\'{}]/g, (ch) => `\\${ch}`)}'`;
}

function arrayExpression(items: readonly Val[]): string {
  const args = items.map((v) => (typeof v === "string" ? intrinsicLiteral(v) : v.expr));
  return `States.Array(${args.join(", ")})`;
}

/**
 * The `States.Array(...)` expression a Batch task state puts in `ContainerOverrides.Command.$`:
 * literals quoted, expressions as they are.
 */
export function taskCommandExpression(
  t: TaskCommandTemplate<Expr>,
  entrypoint: readonly string[] = DEFAULT_ENTRYPOINT,
): string {
  return arrayExpression([...entrypoint, ...taskArgv<Expr>(t)]);
}

/** The `States.Array(...)` expression of the run-failed state's command. */
export function runFailedCommandExpression(
  c: { plan: string; executionId: Val; error: Val },
  entrypoint: readonly string[] = DEFAULT_ENTRYPOINT,
): string {
  return arrayExpression([...entrypoint, ...runFailedArgv<Expr>(c)]);
}
