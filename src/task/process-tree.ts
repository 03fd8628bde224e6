/**
 * The processes a task started, found from /proc: every descendant of a worker host, and every
 * process still in its process group (a host leads its own group, so a child whose parent exited —
 * a shell's `cmd &` — is found there). Used to kill what a task spawned when it ends, times out
 * or is cancelled. On a system without /proc, nothing is found and only the group is signalled.
 */
import * as fs from "node:fs";

/** The processes below `root` (its descendants and its process group), `root` excluded. */
export function processTree(root: number): number[] {
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  const found = new Set<number>();
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue; // it exited while we looked
    }
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pid = Number(name);
    const ppid = Number(fields[1]);
    const pgrp = Number(fields[2]);
    if (pid === root) continue;
    if (pgrp === root) found.add(pid);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  // Descendants of the root and of every member of its group.
  const stack = [root, ...found];
  const visited = new Set(stack);
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (visited.has(child)) continue;
      visited.add(child);
      found.add(child);
      stack.push(child);
    }
  }
  return [...found];
}

/** Sends `signal` to every process of `root`'s tree (not `root` itself); never throws. */
export function killTree(root: number, signal: NodeJS.Signals = "SIGKILL"): number {
  let killed = 0;
  for (const pid of processTree(root)) {
    try {
      process.kill(pid, signal);
      killed += 1;
    } catch {
      // already gone
    }
  }
  return killed;
}
