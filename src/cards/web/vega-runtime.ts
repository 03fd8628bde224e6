/**
 * The chart runtime inlined into cards that draw charts (bundled by `npm run build`): draws each
 * `<script type="application/json" data-mf-vega>` block with Vega, evaluating expressions with
 * Vega's interpreter so the card's policy needs no `eval`.
 */
import { View, parse } from "vega";
import { compile } from "vega-lite";
import { expressionInterpreter } from "vega-interpreter";

function showError(el: HTMLElement, err: unknown): void {
  el.classList.add("mf-error");
  el.textContent = `The chart cannot be drawn: ${(err as Error)?.message ?? String(err)}`;
}

function draw(block: Element): void {
  const el = document.getElementById(block.getAttribute("data-mf-vega") ?? "");
  if (!el) return;
  try {
    const { lite, spec } = JSON.parse(block.textContent ?? "{}") as { lite: boolean; spec: Record<string, unknown> };
    const vegaSpec = lite ? compile(spec as never).spec : spec;
    const view = new View(parse(vegaSpec as never, undefined, { ast: true }), {
      expr: expressionInterpreter,
      renderer: "svg",
      container: el,
      hover: true,
    });
    view.runAsync().then(
      () => el.setAttribute("data-mf-drawn", "true"),
      (err: unknown) => showError(el, err),
    );
  } catch (err) {
    showError(el, err);
  }
}

document.querySelectorAll("script[type='application/json'][data-mf-vega]").forEach(draw);
