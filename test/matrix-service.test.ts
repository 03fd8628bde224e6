/** The test matrix (test/helpers/matrix.ts) on S3 with the metadata service. */
import { defineMatrix } from "./helpers/matrix.js";

defineMatrix("S3 + service");
