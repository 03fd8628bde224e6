/** The `blank` card: only what the step appends. */
import { defineCardType } from "../card-type.js";

/** `@card({ type: "blank" })`. */
export const blankCard = defineCardType({
  type: "blank",
  help: "an empty card that shows only the components the step appends",
  render: (_data, components) => components,
});
