/** Settings shared by the runtime, the client and the CLI. */
import * as os from "node:os";
import { loadConfig } from "./config/index.js";

/** The library's version, recorded on every run as a system tag. */
export const VERSION = "0.1.0";

/**
 * The user, resolved in one place for runs, the client and `configure show`: `METAFLOW_USER`
 * from the environment, else from the config file, else `USER`/`USERNAME`, else the OS account.
 */
export function currentUser(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return loadConfig(env as NodeJS.ProcessEnv, env.HOME || os.homedir()).user.value;
}
