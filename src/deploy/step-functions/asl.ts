/** The subset of the Amazon States Language the compiler emits, as types. */

/** Any state; fields as the Amazon States Language names them. */
export interface AslState {
  readonly Type: "Task" | "Pass" | "Choice" | "Map" | "Parallel" | "Succeed" | "Fail";
  readonly Comment?: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly [field: string]: unknown;
}

/** A state machine, or the body of a Map or a branch of a Parallel state. */
export interface AslMachine {
  readonly Comment?: string;
  readonly StartAt: string;
  readonly States: Record<string, AslState>;
  readonly TimeoutSeconds?: number;
}

/** Every `Type: "Task"` state of a machine, nested Map bodies and Parallel branches included, with its name. */
export function taskStates(machine: AslMachine): Array<[string, AslState]> {
  const out: Array<[string, AslState]> = [];
  for (const [name, state] of Object.entries(machine.States)) {
    if (state.Type === "Task") out.push([name, state]);
    if (state.Type === "Map") out.push(...taskStates(state.ItemProcessor as AslMachine));
    if (state.Type === "Parallel")
      for (const b of state.Branches as AslMachine[]) out.push(...taskStates(b));
  }
  return out;
}
