/** The test matrix (test/helpers/matrix.ts) on S3 with local metadata. */
import { defineMatrix } from "./helpers/matrix.js";

defineMatrix("S3 + local metadata");
