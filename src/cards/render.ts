/** Renders one card to its self-contained HTML page; never throws. */
import { BasicRenderContext, errorBox, renderChild } from "./component.js";
import { cardDocument } from "./document.js";
import { escapeHtml } from "./escape.js";
import type { CardData } from "./card-type.js";
import { findCardType, cardTypeNames } from "./registry.js";

/** Which card to render. */
export interface CardIdentity {
  readonly type: string;
  readonly id?: string;
  readonly options?: Readonly<Record<string, unknown>>;
}

/** A rendered card and the problems met while rendering it. */
export interface RenderedCard {
  readonly html: string;
  /** One line per component (or type) that failed; the card shows each as an error box. */
  readonly problems: readonly string[];
}

/**
 * Renders `components` as a card of `card.type` about `data`. A component that throws shows as
 * an error box; an unknown type or a type that throws gives a card with the error; a missing
 * chart runtime gives a card whose charts say so.
 */
export function renderCard(card: CardIdentity, data: CardData, components: readonly unknown[]): RenderedCard {
  const ctx = new BasicRenderContext();
  const problems: string[] = [];
  let body: string;
  const def = findCardType(card.type);
  try {
    if (!def) throw new Error(`there is no card type '${card.type}'; the types are: ${cardTypeNames().join(", ")}`);
    const parts = def.render(data, components, card.options ?? {});
    body = parts.map((p) => `<div class="mf-component">${renderChild(p, ctx)}</div>`).join("");
  } catch (err) {
    problems.push(`card type '${card.type}' failed: ${(err as Error)?.message ?? String(err)}`);
    body = errorBox(`The ${card.type} card failed to render`, err);
  }
  for (const e of ctx.errors) problems.push(`${e.what} failed to render: ${(e.err as Error)?.message ?? String(e.err)}`);
  const t = data.task;
  const pathspec = `${t.flow}/${t.runId}/${t.step}/${t.taskId}`;
  const head =
    `<header class="mf-card-head"><h1>${escapeHtml(card.id ?? `${t.step}`)}</h1>` +
    `<span class="mf-muted">${escapeHtml(pathspec)} · attempt ${t.attempt} · <span class="mf-status-${escapeHtml(t.status)}">${escapeHtml(t.status)}</span>` +
    `${data.final ? "" : " · live"}</span></header>`;
  const meta = { type: card.type, id: card.id, pathspec, attempt: t.attempt, final: data.final };
  try {
    return { html: cardDocument({ title: `${card.id ?? card.type} · ${pathspec}`, body: head + body, vega: ctx.vega, meta }), problems };
  } catch (err) {
    // The chart runtime is missing (an unbuilt checkout): keep the card, without its charts.
    problems.push((err as Error).message);
    const note = errorBox("Charts cannot be drawn", err);
    return { html: cardDocument({ title: `${card.id ?? card.type} · ${pathspec}`, body: head + note + body, vega: false, meta }), problems };
  }
}
