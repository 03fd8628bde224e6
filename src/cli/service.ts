/** `metaflow service`: runs the metadata service until SIGINT or SIGTERM. */
import { Command } from "commander";
import * as fs from "node:fs";
import { UsageError } from "../errors.js";
import type { MetadataProvider } from "../metadata/types.js";
import type { Auth } from "../service/auth.js";
import { databaseUrlOf, tokenCommand } from "./service-token.js";

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !Number.isFinite(n))
    throw new UsageError(`${flag} expects a number, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Reads the shared token from `--token-file` or `METAFLOW_SERVICE_AUTH_TOKEN` (never from a flag,
 * which `ps` would show); undefined when neither is set: then only per-user tokens are accepted.
 */
function readToken(file: string | undefined): string | undefined {
  let token: string | undefined;
  if (file) {
    try {
      token = fs.readFileSync(file, "utf8").trim();
    } catch (err) {
      throw new UsageError(`--token-file ${file} cannot be read: ${(err as Error).message}`);
    }
    if (!token) throw new UsageError(`--token-file ${file} is empty; put the token in it, e.g. openssl rand -hex 32 > ${file}`);
  } else {
    token = process.env.METAFLOW_SERVICE_AUTH_TOKEN?.trim();
  }
  if (!token) return undefined;
  if (token.length < 16)
    throw new UsageError(
      `The service token must be at least 16 characters (got ${token.length}); generate one with: openssl rand -hex 32`,
    );
  return token;
}

/** Builds the `service` command (and `service token ...`). */
export function serviceCommand(): Command {
  const service = new Command("service")
    .description("run the metadata service (HTTP, backed by PostgreSQL); 'service token' manages per-user tokens")
    .option("--port <port>", "port to listen on (0 picks a free one)", "8080")
    .option("--host <host>", "address to listen on; 0.0.0.0 serves other machines", "127.0.0.1")
    .option(
      "--database-url <url>",
      "PostgreSQL URL (default: $METAFLOW_SERVICE_DATABASE_URL; the password may come from $PGPASSWORD)",
    )
    .option(
      "--token-file <file>",
      "file holding the shared bearer token (default: $METAFLOW_SERVICE_AUTH_TOKEN; without one, only per-user tokens are accepted)",
    )
    .option("--ui", "also serve the web UI under /ui/; people sign in with their token (reads the configured datastore)")
    .option(
      "--heartbeat-timeout <seconds>",
      "a run silent for this long without an end shows as failed",
      "60",
    )
    .action(
      async (opts: {
        port: string;
        host: string;
        databaseUrl?: string;
        tokenFile?: string;
        heartbeatTimeout: string;
        ui?: boolean;
      }) => {
        const databaseUrl = databaseUrlOf(opts.databaseUrl);
        const port = positiveNumber("--port", opts.port);
        if (!Number.isInteger(port) || port > 65535)
          throw new UsageError(`--port must be an integer from 0 to 65535, got ${opts.port}`);
        // Loaded here so other commands do not pay for the PostgreSQL driver.
        const { startMetadataService } = await import("../service/server.js");
        const token = readToken(opts.tokenFile);
        const mount = opts.ui ? await uiMount() : undefined;
        const running = await startMetadataService({
          databaseUrl,
          ...(token === undefined ? {} : { token }),
          ...(mount ? { mount: mount.mount } : {}),
          port,
          host: opts.host,
          heartbeatTimeoutMs: positiveNumber("--heartbeat-timeout", opts.heartbeatTimeout) * 1000,
        });
        process.stdout.write(`Metadata service listening on ${running.url}\n`);
        if (mount) process.stdout.write(`Metaflow UI on ${running.url}/ui/ (${mount.storage.root})\n`);
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            process.stderr.write(`${signal}: stopping the metadata service\n`);
            process.off("SIGINT", onInt);
            process.off("SIGTERM", onTerm);
            resolve();
          };
          const onInt = () => stop("SIGINT");
          const onTerm = () => stop("SIGTERM");
          process.on("SIGINT", onInt);
          process.on("SIGTERM", onTerm);
        });
        await running.close();
        mount?.close();
      },
    );
  // `service token create --database-url X`: the flag belongs to the subcommand that is named before it.
  service.enablePositionalOptions().addCommand(tokenCommand());
  return service;
}

/** The team UI mounted under /ui/: the configured datastore, the service's own database, its tokens (shared and per-user). */
async function uiMount() {
  const { createUiHandler } = await import("../ui/server.js");
  const { openStorage, closeStorage } = await import("../datastore/open.js");
  const { loadConfig } = await import("../config/index.js");
  const storage = openStorage(loadConfig(process.env));
  return {
    storage,
    close: () => closeStorage(storage),
    mount: {
      prefix: "/ui/",
      create: (metadata: MetadataProvider, authenticate: (authorization: string | undefined) => Promise<Auth | undefined>) =>
        createUiHandler({
          client: { backends: { metadata, storage } },
          basePath: "/ui/",
          authenticate: async (authorization) => {
            const auth = await authenticate(authorization);
            return auth && { user: auth.kind === "user" ? auth.user : undefined };
          },
        }),
    },
  };
}
