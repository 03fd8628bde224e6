/**
 * The public API that flow code sees as "metaflow-ts" inside a running parent process (everything
 * but the drivers that start runs, which `index.ts` adds). Metaflow.ts: write a flow of steps in TypeScript; run every task isolated and in parallel, every
 * artifact versioned.
 *
 * @example
 * import { FlowSpec, step } from "metaflow-ts";
 *
 * export default class HelloFlow extends FlowSpec {
 *   declare greeting: string;
 *   @step start() {
 *     this.greeting = "hello";
 *     this.next(this.end);
 *   }
 *   @step end() {
 *     console.log(this.greeting);
 *   }
 * }
 */
export { FlowSpec } from "./flow/flowspec.js";
export type {
  Inputs,
  InputView,
  ArtifactNames,
  StepNames,
  StepRef,
  MergeOptions,
  ForeachOptions,
  SwitchOptions,
  ForeachFrame,
} from "./flow/flowspec.js";
export { step } from "./flow/steps.js";
export { Parameter, IncludeFile, JSONType } from "./flow/parameter.js";
export type { ParameterOptions, IncludeFileOptions, ParameterSpec } from "./flow/parameter.js";
export { current } from "./flow/current.js";
export type { CurrentTask, CurrentExtensions } from "./flow/current.js";

export { environment } from "./decorators/environment.js";
export type { EnvironmentOptions } from "./decorators/environment.js";
export { resources } from "./decorators/resources.js";
export type { ResourcesOptions } from "./decorators/resources.js";
export { retry } from "./decorators/retry.js";
export type { RetryOptions } from "./decorators/retry.js";
export { catchError } from "./decorators/catch-error.js";
export type { CatchErrorOptions } from "./decorators/catch-error.js";
export { timeout } from "./decorators/timeout.js";
export type { TimeoutOptions } from "./decorators/timeout.js";
export { batch } from "./decorators/batch.js";
export type { BatchOptions } from "./decorators/batch.js";
export { project } from "./decorators/project.js";
export type { ProjectOptions, ProjectInfo } from "./decorators/project.js";
export { schedule } from "./decorators/schedule.js";
export type { ScheduleOptions } from "./decorators/schedule.js";
export { slurm } from "./decorators/slurm.js";
export type { SlurmOptions } from "./decorators/slurm.js";
export { card } from "./cards/decorator.js";
export { stepDecorator, flowDecorator } from "./decorators/make.js";
export { requestResources } from "./decorators/contract.js";
export type { StepDecoratorFactory, FlowDecoratorFactory } from "./decorators/make.js";
export type {
  DecoratorDefinition,
  StepDecoratorDefinition,
  FlowDecoratorDefinition,
  DecoratorSpec,
  TaskPlan,
  ResourceRequest,
  LauncherChoice,
  PlanContext,
  FlowInfo,
  StepTask,
  RunTagContext,
  StepShape,
  StepEnd,
  StoredArtifact,
  TaskStorage,
} from "./decorators/contract.js";

export {
  MetaflowError,
  FlowLoadError,
  GraphError,
  UsageError,
  ParameterError,
  ArtifactSerializationError,
  DatastoreError,
  MetadataCorruptError,
  RecordConflictError,
  StepRuntimeError,
  RunFailedError,
  DecoratorError,
} from "./errors.js";
export type { GraphProblem, PlainError } from "./errors.js";

export {
  Markdown,
  Table,
  Image,
  VegaChart,
  ProgressBar,
  Artifact,
  ErrorComponent,
  ErrorComponent as Error,
  CardComponent,
  CardCollector,
  CardSet,
  createCardSet,
  renderCard,
  registerCardType,
  defineCardType,
} from "./cards/index.js";
export type {
  CardOptions,
  CardSpec,
  CardData,
  CardTypeDefinition,
  TableOptions,
  ImageOptions,
  ProgressBarOptions,
  ArtifactOptions,
  ArrowLike,
} from "./cards/index.js";

export * from "./client/index.js";

export { registerSerializer, SerializerError } from "./datastore/serializers.js";
export type { Serializer, EncodedValue, ValueDescription, StoredDescription } from "./datastore/serializers.js";
export { useArrow } from "./datastore/arrow.js";

export { S3, S3Object, S3Error, S3NotFoundError } from "./s3/index.js";
export type { S3Options, S3Data, S3PutItem, S3ListEntry, S3GetOptions } from "./s3/index.js";
export { loadConfig, ConfigError } from "./config/index.js";
export type { MetaflowConfig, Setting, SettingSource, S3Credentials } from "./config/index.js";
