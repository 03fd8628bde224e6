/**
 * `metaflow service token create|list|revoke`: per-user tokens of the metadata service, managed
 * straight in its PostgreSQL database (whoever may do that administers the service).
 */
import { Command } from "commander";
import { loadConfig } from "../config/index.js";
import { UsageError } from "../errors.js";

interface DbFlags {
  databaseUrl?: string;
}

/** The database URL from the flag, else the setting `METAFLOW_SERVICE_DATABASE_URL` (environment or config file). */
export function databaseUrlOf(flag: string | undefined): string {
  const url = flag ?? loadConfig().serviceDatabaseUrl.value;
  if (!url)
    throw new UsageError(
      "The service needs a database: pass --database-url or set METAFLOW_SERVICE_DATABASE_URL",
    );
  return url;
}

/** Opens the token store on a migrated database, runs `fn`, and closes the pool. */
async function withTokens<T>(
  flags: DbFlags,
  fn: (tokens: import("../service/auth.js").TokenStore) => Promise<T>,
): Promise<T> {
  // Loaded here so other commands do not pay for the PostgreSQL driver.
  const [{ default: pg }, { TokenStore }, { migrate }] = await Promise.all([
    import("pg"),
    import("../service/auth.js"),
    import("../service/schema.js"),
  ]);
  const pool = new pg.Pool({
    connectionString: databaseUrlOf(flags.databaseUrl),
    max: 1,
    connectionTimeoutMillis: 5000,
  });
  try {
    await migrate(pool);
    return await fn(new TokenStore(pool));
  } finally {
    await pool.end();
  }
}

const dbOption = (cmd: Command): Command =>
  cmd
    .option(
      "--database-url <url>",
      "PostgreSQL URL of the service (default: $METAFLOW_SERVICE_DATABASE_URL)",
    )
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });

const date = (d: Date | null): string => (d ? d.toISOString().slice(0, 16).replace("T", " ") : "-");

/** Builds `service token` and its subcommands. */
export function tokenCommand(): Command {
  const token = new Command("token").description(
    "create, list and revoke per-user tokens of the metadata service",
  );
  token.addCommand(
    dbOption(new Command("create"))
      .description("issue a token to a user; runs made with it are recorded under that user")
      .requiredOption("--user <name>", "the user the token belongs to")
      .option("--label <text>", "a note shown by 'token list', e.g. the machine it is for")
      .action(async (flags: DbFlags & { user: string; label?: string }) => {
        const { TOKEN_USER_RE } = await import("../service/auth.js");
        if (!TOKEN_USER_RE.test(flags.user)) {
          throw new UsageError(
            `--user must be a user name (letters, digits, '.', '_', '@', '-'; at most 128), got ${JSON.stringify(flags.user)}`,
          );
        }
        const { id, token: value } = await withTokens(flags, (t) =>
          t.create(flags.user, flags.label),
        );
        process.stderr.write(
          `Created token ${id} for ${flags.user}. It is shown once, below; give it to ${flags.user} as METAFLOW_SERVICE_AUTH_TOKEN.\n`,
        );
        process.stdout.write(`${value}\n`);
      }),
  );
  token.addCommand(
    dbOption(new Command("list"))
      .description("list the tokens issued (never the tokens themselves)")
      .action(async (flags: DbFlags) => {
        const rows = await withTokens(flags, (t) => t.list());
        const table = rows.map((r) => [
          r.id,
          r.user,
          date(r.createdAt),
          date(r.lastUsedAt),
          r.revokedAt ? `revoked ${date(r.revokedAt)}` : "active",
          r.label ?? "",
        ]);
        const header = ["ID", "USER", "CREATED", "LAST USED", "STATUS", "LABEL"];
        const widths = header.map((h, i) =>
          Math.max(h.length, ...table.map((row) => row[i]!.length)),
        );
        for (const row of [header, ...table])
          process.stdout.write(
            `${row
              .map((c, i) => c.padEnd(widths[i]!))
              .join("  ")
              .trimEnd()}\n`,
          );
      }),
  );
  token.addCommand(
    dbOption(new Command("revoke"))
      .argument("<id>", "the token's id, from 'token list'")
      .description("revoke a token; requests with it are refused from then on")
      .action(async (id: string, flags: DbFlags) => {
        if (!/^\d{1,18}$/.test(id))
          throw new UsageError(
            `token id must be a number from 'metaflow service token list', got ${JSON.stringify(id)}`,
          );
        const found = await withTokens(flags, (t) => t.revoke(id));
        if (!found)
          throw new UsageError(`There is no token ${id}; see 'metaflow service token list'`);
        process.stdout.write(`Revoked token ${id}.\n`);
      }),
  );
  return token.exitOverride().configureOutput({ writeErr: () => undefined });
}
