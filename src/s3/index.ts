/** The user-facing S3 client: `new S3({ run: this })` or `new S3({ root })`. */
export { S3, S3Object } from "./client.js";
export type { S3Options, S3Data, S3PutItem, S3ListEntry, S3GetOptions } from "./client.js";
export { S3Error, S3NotFoundError } from "./errors.js";
