/** A secret setting value that never prints itself: logs, JSON and `util.inspect` see only a mask. */
import { inspect } from "node:util";

/** Wraps a secret (a token, a secret key) so that printing or serializing it by accident shows `****abcd` at most. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The real value; call it only where the secret is sent to the service that needs it. */
  reveal(): string {
    return this.#value;
  }

  /** The masked form, e.g. `****wxyz (32 chars)`; short secrets show no characters at all. */
  get masked(): string {
    return maskSecret(this.#value);
  }

  toString(): string {
    return this.masked;
  }

  toJSON(): string {
    return this.masked;
  }

  [inspect.custom](): string {
    return `Secret(${this.masked})`;
  }
}

/** Masks a secret for display: the last four characters of a long one and its length, nothing of a short one. */
export function maskSecret(value: string): string {
  // Revealing four characters of a short secret would give away too large a share of it.
  return value.length >= 16 ? `****${value.slice(-4)} (${value.length} chars)` : "****";
}

/** Query parameters whose values are credentials (`?password=`, `?sslpassword=`, `?token=`, signed-URL signatures, ...). */
const SECRET_PARAM = /pass|pwd|secret|token|key|sig|credential/i;

/**
 * A URL with its credentials masked for display: the password of its authority and the value of
 * every query parameter named like a secret (libpq reads `?password=`, for one). Text that is not
 * a URL is masked whole, since it may hold anything.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "<unparseable URL, not shown>";
  }
  let masked = false;
  if (u.password) {
    u.password = "***";
    masked = true;
  }
  for (const name of [...new Set(u.searchParams.keys())]) {
    if (!SECRET_PARAM.test(name)) continue;
    u.searchParams.set(name, "***");
    masked = true;
  }
  // Unchanged URLs are shown as written (`new URL` would add a trailing slash); URLSearchParams
  // percent-encodes the mask, which is shown as written too.
  return masked ? u.toString().replace(/%2A%2A%2A/g, "***") : url;
}

/** Whether a URL carries credentials that `redactUrl` would mask. */
export function hasUrlCredentials(url: string): boolean {
  return redactUrl(url) !== url;
}
