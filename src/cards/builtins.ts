/** The built-in card types, listed in one place. */
import type { CardTypeDefinition } from "./card-type.js";
import { blankCard } from "./types/blank.js";
import { defaultCard } from "./types/default.js";

/** Every built-in card type: `default` and `blank`. */
export const BUILTIN_CARD_TYPES: readonly CardTypeDefinition[] = [defaultCard, blankCard];
