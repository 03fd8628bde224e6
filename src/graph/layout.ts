/**
 * A layered layout of a flow's graph, top to bottom: `start` on the first row, each step one row
 * below the lowest step that leads to it. Pure computation with no Node or DOM imports, so a
 * card (drawn as SVG text in a task) and the web UI (drawn in the browser) place steps alike.
 */

/** What the layout needs of a step. */
export interface LayoutStep {
  readonly name: string;
  /** Steps this one can go to, in order. */
  readonly out: readonly string[];
}

/** A placed step: its box's top-left corner and size. */
export interface PlacedNode {
  readonly name: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly row: number;
}

/** A placed transition; `back` marks an edge that goes up or to itself (a switch that repeats a step). */
export interface PlacedEdge {
  readonly from: string;
  readonly to: string;
  readonly back: boolean;
  /** SVG path data of the edge, from the source's box to the target's. */
  readonly path: string;
}

/** A whole laid-out graph. */
export interface GraphLayout {
  readonly nodes: readonly PlacedNode[];
  readonly edges: readonly PlacedEdge[];
  readonly width: number;
  readonly height: number;
}

/** Sizes of the layout, in pixels. */
export interface LayoutOptions {
  /** @default 150 */
  readonly nodeWidth?: number;
  /** @default 36 */
  readonly nodeHeight?: number;
  /** Space between two boxes on one row. @default 24 */
  readonly gapX?: number;
  /** Space between two rows. @default 44 */
  readonly gapY?: number;
}

/** Finds the edges that close a cycle (to a step still being visited), walking from `start`. */
function backEdges(steps: readonly LayoutStep[], root: string): Set<string> {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const state = new Map<string, "open" | "done">();
  const back = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, "open");
    for (const to of byName.get(name)?.out ?? []) {
      if (!byName.has(to)) continue;
      const s = state.get(to);
      if (s === "open") back.add(`${name}\u0000${to}`);
      else if (s === undefined) visit(to);
    }
    state.set(name, "done");
  };
  if (byName.has(root)) visit(root);
  for (const s of steps) if (!state.has(s.name)) visit(s.name);
  return back;
}

/** Row of each step: the longest path from a source over forward edges. */
function rows(steps: readonly LayoutStep[], back: Set<string>): Map<string, number> {
  const names = new Set(steps.map((s) => s.name));
  const incoming = new Map<string, string[]>(steps.map((s) => [s.name, []]));
  for (const s of steps) {
    for (const to of s.out) if (names.has(to) && !back.has(`${s.name}\u0000${to}`)) incoming.get(to)!.push(s.name);
  }
  const row = new Map<string, number>();
  const rowOf = (name: string, depth: number): number => {
    const known = row.get(name);
    if (known !== undefined) return known;
    // The forward edges form a DAG; the depth guard only protects against malformed input.
    const r = depth > steps.length ? 0 : Math.max(-1, ...incoming.get(name)!.map((p) => rowOf(p, depth + 1))) + 1;
    row.set(name, r);
    return r;
  };
  for (const s of steps) rowOf(s.name, 0);
  return row;
}

/**
 * Places every step on a row and orders each row by the mean position of the steps leading to it.
 * @example
 * const layout = layoutGraph(graph.steps); // then draw layout.nodes as boxes, layout.edges as paths
 */
export function layoutGraph(steps: readonly LayoutStep[], options: LayoutOptions = {}): GraphLayout {
  const w = options.nodeWidth ?? 150;
  const h = options.nodeHeight ?? 36;
  const gapX = options.gapX ?? 24;
  const gapY = options.gapY ?? 44;
  const back = backEdges(steps, "start");
  const rowOf = rows(steps, back);
  const byRow: string[][] = [];
  for (const s of steps) (byRow[rowOf.get(s.name)!] ??= []).push(s.name);
  const order = new Map<string, number>();
  const parents = new Map<string, string[]>();
  for (const s of steps) for (const to of s.out) if (!back.has(`${s.name}\u0000${to}`)) (parents.get(to) ?? parents.set(to, []).get(to)!).push(s.name);
  for (const row of byRow) {
    if (!row) continue;
    const key = (n: string): number => {
      const ps = (parents.get(n) ?? []).map((p) => order.get(p)).filter((v): v is number => v !== undefined);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    const sorted = row.map((n, i) => ({ n, k: key(n), i })).sort((a, b) => a.k - b.k || a.i - b.i);
    sorted.forEach((e, i) => order.set(e.n, i - (sorted.length - 1) / 2));
  }
  const widest = Math.max(1, ...byRow.map((r) => r?.length ?? 0));
  const width = widest * w + (widest - 1) * gapX + 2 * gapX;
  const nodes: PlacedNode[] = steps.map((s) => {
    const row = rowOf.get(s.name)!;
    const cx = width / 2 + order.get(s.name)! * (w + gapX);
    return { name: s.name, x: cx - w / 2, y: gapY / 2 + row * (h + gapY), width: w, height: h, row };
  });
  const at = new Map(nodes.map((n) => [n.name, n]));
  const edges: PlacedEdge[] = [];
  for (const s of steps) {
    for (const to of s.out) {
      const a = at.get(s.name);
      const b = at.get(to);
      if (!a || !b) continue;
      const isBack = back.has(`${s.name}\u0000${to}`);
      edges.push({ from: s.name, to, back: isBack, path: isBack ? backPath(a, b) : forwardPath(a, b) });
    }
  }
  const rowsUsed = byRow.length;
  return { nodes, edges, width: width + (edges.some((e) => e.back) ? 40 : 0), height: rowsUsed * h + (rowsUsed - 1) * gapY + gapY };
}

function forwardPath(a: PlacedNode, b: PlacedNode): string {
  const x1 = a.x + a.width / 2;
  const y1 = a.y + a.height;
  const x2 = b.x + b.width / 2;
  const y2 = b.y;
  const my = (y1 + y2) / 2;
  return `M${r(x1)},${r(y1)} C${r(x1)},${r(my)} ${r(x2)},${r(my)} ${r(x2)},${r(y2)}`;
}

/** A loop out of the right side of the source and into the right side of the target. */
function backPath(a: PlacedNode, b: PlacedNode): string {
  const x1 = a.x + a.width;
  // A step that repeats itself leaves from the upper half of its box and comes back into the lower half.
  const y1 = a.y + a.height * (a === b ? 0.3 : 0.5);
  const x2 = b.x + b.width;
  const y2 = b.y + b.height * (a === b ? 0.7 : 0.5);
  const out = Math.max(x1, x2) + 30;
  return `M${r(x1)},${r(y1)} C${r(out)},${r(y1)} ${r(out)},${r(y2)} ${r(x2)},${r(y2)}`;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}
