/** `metaflow ui`: the web UI over the configured datastore and metadata, until SIGINT or SIGTERM. */
import { Command } from "commander";
import { UsageError } from "../errors.js";

/** Parses `--port`: a whole number from 0 to 65535. */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  return n;
}

/** Resolves when the process gets SIGINT or SIGTERM. */
export function untilSignal(what: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`${signal}: stopping ${what}\n`);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve();
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

/** Builds the `ui` command. */
export function uiCommand(): Command {
  return new Command("ui")
    .description("serve the web UI (flows, runs, graphs, logs, artifacts, cards) over the configured datastore")
    .option("--port <port>", "port to listen on (0 picks a free one)", "8324")
    .option("--host <host>", "address to listen on; 0.0.0.0 serves other machines (without sign-in: prefer metaflow service --ui)", "127.0.0.1")
    .action(async (opts: { port: string; host: string }) => {
      const port = portNumber(opts.port);
      // Loaded here so other commands do not pay for the server.
      const { startUi } = await import("../ui/server.js");
      const { openBackends } = await import("../backends.js");
      const backends = openBackends();
      let ui;
      try {
        ui = await startUi({ port, host: opts.host, client: { backends } });
      } catch (err) {
        backends.close();
        const e = err as NodeJS.ErrnoException;
        if (e.code === "EADDRINUSE") throw new UsageError(`Port ${port} on ${opts.host} is in use; pick another with --port (0 picks a free one)`);
        if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") throw new UsageError(`Cannot listen on --host ${opts.host}: ${e.message}`);
        throw err;
      }
      process.stdout.write(`Metaflow UI on ${ui.url} (${backends.description})\n`);
      await untilSignal("the UI");
      await ui.close();
      backends.close();
    });
}
