/**
 * Who a request comes from. Two kinds of bearer token:
 * - the shared token (`--token-file`), for small teams: whoever holds it is trusted, and a run is
 *   recorded under the user the client names;
 * - per-user tokens (`metaflow service token create --user ann`): the service records runs under
 *   the token's user, whatever the client claims, and only that user writes to them.
 *
 * Per-user tokens are 32 random bytes, shown once and stored as their SHA-256. A slow password
 * hash (bcrypt, scrypt, Argon2) protects low-entropy secrets from guessing; a 256-bit random
 * token cannot be guessed, so a fast hash loses nothing — and it lets each request find its token
 * with one indexed lookup instead of paying a deliberately slow hash per request.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Db } from "./db.js";

/** The authenticated caller of one request. */
export type Auth =
  | { readonly kind: "shared" }
  | { readonly kind: "user"; readonly user: string; readonly tokenId: string };

/** Every per-user token starts with this, so it is recognizable in a config file or a leak scanner. */
export const TOKEN_PREFIX = "mft_";
/** User names a token may be issued to. */
export const TOKEN_USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** What `token list` shows of a token (never the token). */
export interface TokenInfo {
  readonly id: string;
  readonly user: string;
  readonly label: string | null;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

/** The SHA-256 under which a token is stored and looked up. */
export function tokenHash(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** Per-user tokens in the service's database. */
export class TokenStore extends Db {
  /** Issues a token to `user`; the returned token is not stored and cannot be shown again. */
  async create(user: string, label?: string): Promise<{ id: string; token: string }> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
    const r = await this.query<{ id: string }>(
      "INSERT INTO api_tokens (user_name, token_sha256, label) VALUES ($1, $2, $3) RETURNING id",
      [user, tokenHash(token), label ?? null],
    );
    return { id: r.rows[0]!.id, token };
  }

  /** Every token issued, oldest first. */
  async list(): Promise<TokenInfo[]> {
    const r = await this.query<{
      id: string;
      user_name: string;
      label: string | null;
      created_at: Date;
      last_used_at: Date | null;
      revoked_at: Date | null;
    }>(
      "SELECT id, user_name, label, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id",
      [],
    );
    return r.rows.map((row) => ({
      id: row.id,
      user: row.user_name,
      label: row.label,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      revokedAt: row.revoked_at,
    }));
  }

  /** Revokes a token by id; false when there is no such token. Revoking twice is harmless. */
  async revoke(id: string): Promise<boolean> {
    const r = await this.query(
      "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1",
      [id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** The live token with this value, noting when it was used (at most once a minute, to spare writes). */
  async lookup(token: string): Promise<{ id: string; user: string } | undefined> {
    const r = await this.query<{ id: string; user_name: string }>(
      `WITH t AS (
         SELECT id, user_name, last_used_at FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL
       ), touched AS (
         UPDATE api_tokens SET last_used_at = now() FROM t
          WHERE api_tokens.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
       )
       SELECT id, user_name FROM t`,
      [tokenHash(token)],
    );
    const row = r.rows[0];
    return row && { id: row.id, user: row.user_name };
  }
}

/**
 * A function that authenticates an `Authorization` header: the shared token (when one is
 * configured; compared in constant time) or a live per-user token; undefined for anything else.
 */
export function authenticator(
  shared: string | undefined,
  tokens: TokenStore,
): (header: string | undefined) => Promise<Auth | undefined> {
  // Comparing digests keeps the shared token's length from leaking too.
  const want = shared === undefined ? undefined : tokenHash(shared);
  return async (header) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m) return undefined;
    const presented = m[1]!;
    if (want && timingSafeEqual(tokenHash(presented), want)) return { kind: "shared" };
    if (!presented.startsWith(TOKEN_PREFIX)) return undefined;
    const found = await tokens.lookup(presented);
    return found && { kind: "user", user: found.user, tokenId: found.id };
  };
}
