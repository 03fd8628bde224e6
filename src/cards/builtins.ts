/** The built-in card types, listed in one place: importing this module registers them. */
import "./types/default.js";
import "./types/blank.js";
