// A layered ("Sugiyama-style") layout for lineage subgraphs, written for this graph's shape.
//
// dagre was measured first (bench/README.md): 2 s or more for 500 nodes and 1,000 edges on this
// machine even with its fastest ranker, because it inserts a dummy node per rank an edge spans
// and an edge label per edge. This layout keeps the three classic steps and drops the dummies:
//   1. ranks: every node sits right of what it depends on (an edge points from the dependent to
//      its dependency), by longest path, then each node is pulled right up to its nearest
//      dependent so that edges stay short;
//   2. order within a rank: a few sweeps of the barycentre heuristic over neighbours' relative
//      positions (an edge across several ranks counts like an adjacent one);
//   3. coordinates: ranks are columns, nodes stacked in order and centred on the tallest column.
// Edges are cubic curves from a dependent's left side to its dependency's right side. It is
// linear in the graph's size per sweep and pure, so it is unit-tested in node.

export interface LayoutEdge {
  source: string;
  target: string;
  kind: string;
}

export interface PlacedNode {
  id: string;
  x: number;
  y: number;
  rank: number;
}

export interface PlacedEdge extends LayoutEdge {
  /** An SVG path (`M … C …`). */
  path: string;
  labelX: number;
  labelY: number;
}

export interface Layout {
  nodes: Map<string, PlacedNode>;
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  rankGap: number;
  nodeGap: number;
  margin: number;
  sweeps: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = { nodeWidth: 190, nodeHeight: 44, rankGap: 130, nodeGap: 18, margin: 16, sweeps: 6 };

/** Ranks: 0 for nodes that depend on nothing shown; a dependent is always right of its dependencies. */
export function assignRanks(ids: readonly string[], edges: readonly LayoutEdge[]): Map<string, number> {
  const known = new Set(ids);
  const deps = new Map<string, string[]>(ids.map((id) => [id, []]));
  const dependents = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (!known.has(e.source) || !known.has(e.target) || e.source === e.target) continue;
    deps.get(e.source)!.push(e.target);
    dependents.get(e.target)!.push(e.source);
  }
  const rank = new Map<string, number>();
  const onStack = new Set<string>();
  // Iterative depth-first longest path, so a deep chain cannot overflow the call stack. An edge
  // back onto the stack (a cycle, which the server refuses to store) is ignored.
  for (const start of ids) {
    if (rank.has(start)) continue;
    const stack: { id: string; next: number }[] = [{ id: start, next: 0 }];
    onStack.add(start);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const children = deps.get(top.id)!;
      if (top.next < children.length) {
        const child = children[top.next++]!;
        if (!rank.has(child) && !onStack.has(child)) {
          onStack.add(child);
          stack.push({ id: child, next: 0 });
        }
        continue;
      }
      let r = 0;
      for (const child of children) {
        const cr = rank.get(child);
        if (cr !== undefined) r = Math.max(r, cr + 1);
      }
      rank.set(top.id, r);
      onStack.delete(top.id);
      stack.pop();
    }
  }
  // Pull nodes right, towards their nearest dependent, dependents first.
  const byRankDesc = [...ids].sort((a, b) => rank.get(b)! - rank.get(a)!);
  for (const id of byRankDesc) {
    const users = dependents.get(id)!;
    if (users.length === 0) continue;
    let nearest = Infinity;
    for (const u of users) nearest = Math.min(nearest, rank.get(u)! - 1);
    if (nearest > rank.get(id)!) rank.set(id, nearest);
  }
  return rank;
}

/** Orders each rank's nodes to reduce crossings; returns the ranks left to right. */
export function orderRanks(ids: readonly string[], edges: readonly LayoutEdge[], rank: Map<string, number>, sweeps: number): string[][] {
  const maxRank = Math.max(0, ...rank.values());
  const layers: string[][] = Array.from({ length: maxRank + 1 }, () => []);
  for (const id of ids) layers[rank.get(id)!]!.push(id);
  const neighbours = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (!rank.has(e.source) || !rank.has(e.target) || e.source === e.target) continue;
    neighbours.get(e.source)!.push(e.target);
    neighbours.get(e.target)!.push(e.source);
  }
  // Relative position in [0, 1] of each node within its rank.
  const position = new Map<string, number>();
  const place = (layer: string[]) => layer.forEach((id, i) => position.set(id, (i + 0.5) / layer.length));
  layers.forEach(place);
  for (let sweep = 0; sweep < sweeps; sweep++) {
    const forward = sweep % 2 === 0;
    const order = forward ? layers.map((_, i) => i) : layers.map((_, i) => layers.length - 1 - i);
    for (const r of order) {
      const layer = layers[r]!;
      // Only neighbours on the side the sweep comes from count, as in the classic heuristic.
      const score = new Map<string, number>();
      for (const id of layer) {
        let sum = 0;
        let n = 0;
        for (const other of neighbours.get(id)!) {
          const or = rank.get(other)!;
          if (forward ? or < r : or > r) {
            sum += position.get(other)!;
            n++;
          }
        }
        score.set(id, n ? sum / n : position.get(id)!);
      }
      layer.sort((a, b) => score.get(a)! - score.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
      place(layer);
    }
  }
  return layers;
}

/** Places `ids` and routes `edges` (edges naming unknown nodes are left out). */
export function layout(ids: readonly string[], edges: readonly LayoutEdge[], options: Partial<LayoutOptions> = {}): Layout {
  const o = { ...DEFAULT_LAYOUT, ...options };
  const unique = [...new Set(ids)];
  const rank = assignRanks(unique, edges);
  const layers = orderRanks(unique, edges, rank, o.sweeps);
  const tallest = Math.max(1, ...layers.map((l) => l.length));
  const columnHeight = (n: number) => n * o.nodeHeight + Math.max(0, n - 1) * o.nodeGap;
  const height = columnHeight(tallest) + 2 * o.margin;
  const nodes = new Map<string, PlacedNode>();
  layers.forEach((layer, r) => {
    const top = o.margin + (columnHeight(tallest) - columnHeight(layer.length)) / 2;
    layer.forEach((id, i) => {
      nodes.set(id, { id, rank: r, x: o.margin + r * (o.nodeWidth + o.rankGap), y: top + i * (o.nodeHeight + o.nodeGap) });
    });
  });
  const placed: PlacedEdge[] = [];
  for (const e of edges) {
    const s = nodes.get(e.source);
    const t = nodes.get(e.target);
    if (!s || !t) continue;
    // From the dependent's left side to the dependency's right side.
    const x1 = s.x;
    const y1 = s.y + o.nodeHeight / 2;
    const x2 = t.x + o.nodeWidth;
    const y2 = t.y + o.nodeHeight / 2;
    const bend = Math.max(30, Math.abs(x1 - x2) / 2);
    const c1 = x1 - bend;
    const c2 = x2 + bend;
    // The label sits where the curve crosses the middle of the gap next to its dependent: the
    // middle of the edge between adjacent ranks, and never on a node a long edge passes.
    const at = labelPoint([x1, c1, c2, x2], [y1, y1, y2, y2], x1 - o.rankGap / 2);
    placed.push({ ...e, path: `M${x1},${y1} C${c1},${y1} ${c2},${y2} ${x2},${y2}`, labelX: at[0], labelY: at[1] });
  }
  const width = 2 * o.margin + layers.length * o.nodeWidth + Math.max(0, layers.length - 1) * o.rankGap;
  return { nodes, edges: placed, width, height };
}

function cubic(p: readonly number[], t: number): number {
  const u = 1 - t;
  return u * u * u * p[0]! + 3 * u * u * t * p[1]! + 3 * u * t * t * p[2]! + t * t * t * p[3]!;
}

/** The point of a cubic curve (decreasing in x) whose x is `x`, found by bisection. */
function labelPoint(xs: readonly number[], ys: readonly number[], x: number): [number, number] {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 20; i++) {
    const mid = (lo + hi) / 2;
    if (cubic(xs, mid) > x) lo = mid;
    else hi = mid;
  }
  const t = (lo + hi) / 2;
  return [cubic(xs, t), cubic(ys, t)];
}

/** How many pairs of edges between adjacent ranks cross (for tests and the benchmark). */
export function crossings(l: Layout): number {
  const segs = l.edges
    .map((e) => [l.nodes.get(e.target)!, l.nodes.get(e.source)!] as const)
    .filter(([a, b]) => b.rank - a.rank === 1);
  let count = 0;
  for (let i = 0; i < segs.length; i++) {
    for (let j = i + 1; j < segs.length; j++) {
      const [a1, b1] = segs[i]!;
      const [a2, b2] = segs[j]!;
      if (a1.rank !== a2.rank) continue;
      if ((a1.y - a2.y) * (b1.y - b2.y) < 0) count++;
    }
  }
  return count;
}
