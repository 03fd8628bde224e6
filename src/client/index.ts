/** The client API: read flows, runs, steps, tasks and artifacts; namespaces and tags. */
export { Metaflow, Flow, Run, Step, Task } from "./objects.js";
export type { AttemptInfo, DataName, DataValue, RunStatus } from "./objects.js";
export { DataArtifact } from "./artifact.js";
export { Card, CardNotFoundError, pickCard } from "./cards.js";
export { CodePackage } from "./code.js";
export type { ClientOptions } from "./context.js";
export type { LogLine, LogOptions } from "./logs.js";
export { namespace, getNamespace, defaultNamespace } from "./namespace.js";
export { parsePathspec } from "./pathspec.js";
export { ArtifactNotFoundError, MalformedPathspecError, NamespaceMismatchError, NotFinishedError, ObjectNotFoundError } from "./errors.js";
export type { PathspecKind } from "./errors.js";
export { InvalidTagError, SystemTagError, validateTag, MAX_TAG_LENGTH } from "../metadata/tags.js";
