/**
 * Entry of a worker host's watchdog thread (`dist/watchdog.js`): once the host is orphaned (its
 * scheduler gone), it kills every process the host's tasks started, then the host. A thread, so a
 * step stuck in a synchronous loop cannot stop it.
 */
import { killTree } from "./process-tree.js";

const ppid = process.ppid;
setInterval(() => {
  if (process.ppid === ppid) return;
  killTree(process.pid, "SIGKILL");
  process.kill(process.pid, "SIGKILL");
}, 500);
