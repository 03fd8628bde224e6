import { MetaflowError } from "../errors.js";

/** An `S3` call failed: a bad key or URL, missing access, or a server that stayed unreachable; `url` names the object. */
export class S3Error extends MetaflowError {
  constructor(
    /** The object or prefix concerned, as `s3://bucket/key` when it could be formed, else the key as given. */
    readonly url: string,
    message: string,
    code = "s3",
  ) {
    super(code, `S3 error for ${url}`, message);
  }
}

/** `S3.get` / `S3.getMany` asked for objects that do not exist; `urls` lists every missing one. */
export class S3NotFoundError extends S3Error {
  constructor(readonly urls: readonly string[]) {
    super(
      urls[0] ?? "",
      urls.length === 1
        ? `No object at ${urls[0]}. Check the key and the S3 root (pass { returnMissing: true } to get an object with exists === false instead).`
        : `${urls.length} objects do not exist: ${urls.slice(0, 10).join(", ")}${urls.length > 10 ? ", ..." : ""}.`,
      "s3-not-found",
    );
  }
}
