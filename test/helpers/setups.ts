/**
 * The setups a team runs on — local storage and metadata; S3 with local metadata; S3 with the
 * metadata service — as environments for `metaflow` processes of a project. s3rver, PostgreSQL
 * and the service come from one `RemoteStack` per test file.
 */
import * as path from "node:path";
import type { Project } from "./project.js";
import { remoteAvailability, startRemoteStack, type RemoteStack } from "./remote.js";

/** One setup. */
export interface Setup {
  readonly name: string;
  /** Why it cannot run here (outside CI only; in CI a missing server fails the stack's start). */
  readonly skip?: string;
  readonly metadata: "local" | "service";
  readonly remote: boolean;
  /** Environment of every `metaflow` process of the setup, for a project directory. */
  env(project: Project): Record<string, string>;
}

/** The servers a file's setups need, started on demand and stopped by `stop()`. */
export class SetupServers {
  readonly availability = remoteAvailability();
  private stack: RemoteStack | undefined;

  /** Starts s3rver (and PostgreSQL + the service, when PostgreSQL is installed). */
  async start(): Promise<void> {
    if (!this.availability.s3) this.stack = await startRemoteStack({ service: !this.availability.postgres });
  }

  async stop(): Promise<void> {
    await this.stack?.stop();
  }

  /** The running stack (after `start`). */
  get remote(): RemoteStack {
    if (!this.stack) throw new Error("the remote stack was not started");
    return this.stack;
  }

  /** The three setups, in order: local; S3 + local metadata; S3 + the service. */
  setups(): Setup[] {
    const a = this.availability;
    return [
      {
        name: "local",
        remote: false,
        metadata: "local",
        env: (p) => ({ METAFLOW_HOME: path.join(p.dir, "no-config"), METAFLOW_DEFAULT_DATASTORE: "local", METAFLOW_DEFAULT_METADATA: "local" }),
      },
      {
        name: "S3 + local metadata",
        ...(a.s3 ? { skip: a.s3 } : {}),
        remote: true,
        metadata: "local",
        env: (p) => this.remote.env({ prefix: `s3local-${path.basename(p.dir)}`, cacheDir: path.join(p.dir, "s3cache"), metadata: "local" }),
      },
      {
        name: "S3 + service",
        ...(a.s3 || a.postgres ? { skip: a.s3 ?? a.postgres } : {}),
        remote: true,
        metadata: "service",
        env: (p) => this.remote.env({ prefix: `s3svc-${path.basename(p.dir)}`, cacheDir: path.join(p.dir, "s3cache"), metadata: "service" }),
      },
    ];
  }
}
