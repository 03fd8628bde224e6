/**
 * Cards: HTML reports of a task, made of components. A card is one self-contained page (styles
 * and chart runtime inline, nothing loaded from the network) in which every value is escaped.
 * @example
 * const report = current.card.get("report");
 * report.append(new Markdown("# Training"));
 * report.append(new Table([[1, 0.9]], { headers: ["epoch", "auc"] }));
 */
export { CardComponent, isCardComponent } from "./component.js";
export type { RenderContext } from "./component.js";
export { Markdown, Artifact } from "./components/text.js";
export type { ArtifactOptions } from "./components/text.js";
export { Table } from "./components/table.js";
export type { TableOptions, ArrowLike } from "./components/table.js";
export { Image, VegaChart, ProgressBar, ErrorComponent } from "./components/media.js";
export type { ImageOptions, ChartSource, ProgressBarOptions } from "./components/media.js";
export { CardCollector } from "./collector.js";
export type { CardSpec, CardSaveRequest, CardCollectorOptions } from "./collector.js";
export { CardSet, createCardSet } from "./card-set.js";
export type { CardSetOptions } from "./card-set.js";
export { renderCard } from "./render.js";
export type { CardIdentity, RenderedCard } from "./render.js";
export { registerCardType, findCardType, cardTypeNames } from "./registry.js";
export { defineCardType } from "./card-type.js";
export type { CardTypeDefinition, CardData, CardTaskInfo, CardArtifactInfo } from "./card-type.js";
export { parseCardOptions, checkStepCards } from "./options.js";
export type { CardOptions } from "./options.js";
export { previewValue, describeType } from "./preview.js";
export { startTaskCards } from "./task-cards.js";
export type { TaskCards, TaskIdentity, TaskOutcome } from "./task-cards.js";
