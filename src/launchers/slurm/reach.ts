/**
 * Can tasks on the compute nodes reach the run's datastore and metadata? Checked before a run with
 * `@slurm` steps starts, so a set-up that cannot work fails with what to configure instead of
 * with jobs that cannot find their inputs. What this machine knows: where a local datastore lives
 * (a temporary directory is not shared), whether metadata is local while data is on S3, whether a
 * URL names this machine, and whether every node of the cluster is this machine anyway.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Backends } from "../../backends.js";
import { findDatastoreRoot, LocalStorage } from "../../datastore/local.js";
import type { SlurmCli } from "./cli.js";

/** What the check looks at, gathered from the configuration and the cluster. */
export interface ReachFacts {
  readonly datastore: "local" | "s3";
  readonly metadata: "local" | "service";
  /** The local datastore's root, or the local metadata's directory when data is on S3. */
  readonly localDir: string | undefined;
  /** Why `localDir` is this machine's alone (a temporary directory, a tmpfs), if it is. */
  readonly localDirPrivate: string | undefined;
  readonly serviceUrl: string | undefined;
  readonly s3Endpoint: string | undefined;
  /** The cluster's node names; `allNodesHere` when each of them is this machine. */
  readonly nodes: readonly string[];
  readonly allNodesHere: boolean;
}

const OFF = "If it is reachable after all, set METAFLOW_SLURM_DATASTORE_CHECK=off.";

/** The problems that keep tasks on the nodes from the datastore or metadata; empty when none. */
export function reachProblems(f: ReachFacts, mode: "auto" | "strict" | "off"): string[] {
  if (mode === "off" || (mode === "auto" && f.allNodesHere)) return [];
  const nodes =
    f.nodes.length > 0
      ? ` (${f.nodes.slice(0, 5).join(", ")}${f.nodes.length > 5 ? ", ..." : ""})`
      : "";
  const problems: string[] = [];
  if (f.datastore === "s3" && f.metadata === "local") {
    problems.push(
      `The datastore is S3 but the metadata is local (${f.localDir}), on this machine: tasks on the compute nodes${nodes} would record their attempts where this run cannot see them. Set METAFLOW_DEFAULT_METADATA=service and METAFLOW_SERVICE_URL to the metadata service, or use a local datastore on a filesystem the nodes share. ${OFF}`,
    );
  } else if (f.datastore === "local" && f.localDirPrivate) {
    problems.push(
      `The local datastore ${f.localDir} is ${f.localDirPrivate}, which the compute nodes${nodes} do not share: tasks there could not read their inputs or store their results. Set METAFLOW_DATASTORE_SYSROOT_LOCAL to a directory on a shared filesystem (NFS, Lustre, GPFS, BeeGFS) mounted at the same path on every node, or use S3 + the metadata service. ${OFF}`,
    );
  }
  for (const [key, url] of [
    ["METAFLOW_SERVICE_URL", f.metadata === "service" ? f.serviceUrl : undefined],
    ["METAFLOW_S3_ENDPOINT_URL", f.datastore === "s3" ? f.s3Endpoint : undefined],
  ] as const) {
    if (url && isLoopback(url)) {
      problems.push(
        `${key}=${url} names this machine by a loopback address, which the compute nodes${nodes} cannot reach: use a host name or address they resolve to it. ${OFF}`,
      );
    }
  }
  return problems;
}

/** Gathers the facts: the configuration, the local directory's filesystem, the cluster's nodes. */
export async function reachFacts(backends: Backends, cli: SlurmCli): Promise<ReachFacts> {
  const c = backends.config;
  const local = backends.storage instanceof LocalStorage ? backends.storage.root : undefined;
  const localDir =
    local ??
    (c.metadata.value === "local"
      ? (c.localRoot.value ?? findDatastoreRoot(process.cwd()))
      : undefined);
  const nodes = await clusterNodes(cli);
  return {
    datastore: local ? "local" : "s3",
    metadata: c.metadata.value,
    localDir,
    localDirPrivate: localDir ? privateDirectory(localDir) : undefined,
    serviceUrl: c.serviceUrl.value,
    s3Endpoint: c.s3Endpoint.value,
    nodes: nodes.map((n) => n.name),
    allNodesHere:
      nodes.length > 0 && nodes.every((n) => isThisMachine(n.host) || isThisMachine(n.address)),
  };
}

/** The nodes as `sinfo` lists them: name, host name, address. */
async function clusterNodes(
  cli: SlurmCli,
): Promise<Array<{ name: string; host: string; address: string }>> {
  const r = await cli.run("sinfo", ["--Node", "--noheader", "--format=%N|%n|%o"]);
  if (r.code !== 0) return [];
  const seen = new Map<string, { name: string; host: string; address: string }>();
  for (const line of r.stdout.split("\n")) {
    const [name, host, address] = line.split("|").map((x) => x.trim());
    if (name) seen.set(name, { name, host: host ?? "", address: address ?? "" });
  }
  return [...seen.values()];
}

const TEMPORARY = ["/tmp", "/var/tmp", "/dev/shm", "/run"];
const MEMORY_FS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** Why a directory belongs to this machine alone, or undefined when it may be shared. */
export function privateDirectory(dir: string): string | undefined {
  const resolved = realpathOrSelf(dir);
  const temps = new Set([...TEMPORARY, realpathOrSelf(os.tmpdir())]);
  for (const t of temps) {
    if (resolved === t || resolved.startsWith(`${t}/`))
      return `under ${t}, this machine's temporary directory`;
  }
  try {
    // The directory may not exist yet; its nearest existing ancestor is on the same filesystem.
    let probe = resolved;
    while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
    if (MEMORY_FS.has(Number(fs.statfsSync(probe).type)))
      return "on a tmpfs, in this machine's memory";
  } catch {
    // No statfs here: the path test above is what we know.
  }
  return undefined;
}

function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

function isLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return false;
  }
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    /^127\./.test(host) ||
    host === "::1" ||
    host === "0.0.0.0"
  );
}

function isThisMachine(hostOrAddress: string): boolean {
  if (hostOrAddress === "") return false;
  const h = hostOrAddress.toLowerCase();
  if (
    h === os.hostname().toLowerCase() ||
    h.split(".")[0] === os.hostname().toLowerCase().split(".")[0]
  )
    return true;
  if (isLoopback(`http://${h.includes(":") ? `[${h}]` : h}/`)) return true;
  return Object.values(os.networkInterfaces())
    .flat()
    .some((i) => i?.address.toLowerCase() === h);
}
