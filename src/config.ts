/** Settings shared by the runtime, the client and the CLI. */
import * as os from "node:os";

/** The library's version, recorded on every run as a system tag. */
export const VERSION = "0.1.0";

/** The user: `METAFLOW_USER`, else `USER`/`USERNAME`, else the OS account name. */
export function currentUser(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const fromEnv = env.METAFLOW_USER || env.USER || env.USERNAME;
  if (fromEnv) return fromEnv;
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
}
