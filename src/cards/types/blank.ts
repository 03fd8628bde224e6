/** The `blank` card: only what the step appends. */
import { registerCardType } from "../registry.js";

/** Registered as `@card({ type: "blank" })`. */
export const blankCard = registerCardType({
  type: "blank",
  help: "an empty card that shows only the components the step appends",
  render: (_data, components) => components,
});
