/** `metaflow configure show`: the effective settings and where each one came from. */
import { Command } from "commander";
import { describeConfig, loadConfig } from "../config/index.js";

/** Builds the `configure` command group (`configure show`). */
export function configureCommand(): Command {
  const configure = new Command("configure").description("inspect the Metaflow.ts configuration");
  configure
    .command("show")
    // main.ts sets these on top-level commands only; errors must reach its handler, not exit here.
    .exitOverride()
    .configureOutput({ writeErr: () => undefined })
    .description(
      "print each effective setting and its source (default, file, environment); secrets are masked",
    )
    .option("--json", "print the settings as JSON")
    .action((opts: { json?: boolean }) => {
      process.stdout.write(formatConfigShow(opts.json ?? false));
      for (const w of loadConfig().warnings) process.stderr.write(`Warning: ${w}\n`);
    });
  return configure;
}

/** Renders `configure show` for the current environment and home directory. */
export function formatConfigShow(json: boolean, env: NodeJS.ProcessEnv = process.env): string {
  const config = loadConfig(env);
  const rows = describeConfig(config);
  if (json) {
    return `${JSON.stringify({ configFile: config.configFile, configFileFound: config.configFileFound, profile: config.profile ?? null, settings: rows }, null, 2)}\n`;
  }
  const file = `${config.configFile}${config.configFileFound ? "" : " (not found, using defaults)"}`;
  const lines = [`Config file: ${file}`, `Profile: ${config.profile ?? "(default)"}`, ""];
  const keyWidth = Math.max(...rows.map((r) => r.key.length));
  const valueWidth = Math.min(60, Math.max(...rows.map((r) => r.value.length)));
  for (const r of rows) {
    // The file's path is printed once above; each row says only which source won.
    const origin = r.source === "file" ? "file" : r.origin;
    lines.push(`${r.key.padEnd(keyWidth)}  ${r.value.padEnd(valueWidth)}  ${origin}`);
  }
  return `${lines.join("\n")}\n`;
}
