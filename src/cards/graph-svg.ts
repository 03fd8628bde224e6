/** The flow's graph as an SVG component, with one step marked (the default card's "where am I"). */
import { layoutGraph, type LayoutStep } from "../graph/layout.js";
import { CardComponent } from "./component.js";
import { escapeHtml } from "./escape.js";

/** Draws `steps` top to bottom; `current` gets the highlighted box. */
export class GraphDiagram extends CardComponent {
  constructor(
    private readonly steps: readonly LayoutStep[],
    private readonly current?: string,
  ) {
    super();
  }

  override render(): string {
    const layout = layoutGraph(this.steps);
    const edges = layout.edges.map((e) => `<path class="${e.back ? "mf-back" : ""}" d="${escapeHtml(e.path)}" marker-end="url(#mf-arrow)"></path>`).join("");
    const nodes = layout.nodes
      .map((n) => {
        const cls = n.name === this.current ? "mf-node mf-node-current" : "mf-node";
        const label = n.name.length > 20 ? `${n.name.slice(0, 19)}…` : n.name;
        return (
          `<g class="${cls}" data-step="${escapeHtml(n.name)}"><title>${escapeHtml(n.name)}</title>` +
          `<rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="6"></rect>` +
          `<text x="${n.x + n.width / 2}" y="${n.y + n.height / 2 + 4}" text-anchor="middle">${escapeHtml(label)}</text></g>`
        );
      })
      .join("");
    return (
      `<div class="mf-graph"><svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" role="img" aria-label="flow graph">` +
      `<defs><marker id="mf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9aa5b5" stroke="none"></path></marker></defs>` +
      `${edges}${nodes}</svg></div>`
    );
  }
}
