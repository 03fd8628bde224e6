/** The test matrix (test/helpers/matrix.ts) on local storage and metadata. */
import { defineMatrix } from "./helpers/matrix.js";

defineMatrix("local");
