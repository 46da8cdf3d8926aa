/** Node id -> the ids it reads from. */
export type Edges = ReadonlyMap<string, readonly string[]>;

/** One cycle as a path of ids (first repeated at the end), or undefined. */
export function findCycle(edges: Edges): string[] | undefined {
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'active') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'active');
    stack.push(id);
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of edges.keys()) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Ids ordered so each comes after its inputs; ties keep declaration order, so the order is stable. */
export function topologicalOrder(edges: Edges): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const next of edges.get(id) ?? []) visit(next);
    order.push(id);
  };
  for (const id of edges.keys()) visit(id);
  return order;
}

export interface GraphNode {
  id: string;
  type: string;
  kind: 'source' | 'transform' | 'sink';
  inputs: { node: string; port: string }[];
}

export function toDot(name: string, nodes: readonly GraphNode[]): string {
  const shape = { source: 'cylinder', transform: 'box', sink: 'folder' } as const;
  const lines = [`digraph ${JSON.stringify(name)} {`, '  rankdir=LR;'];
  for (const n of nodes)
    lines.push(`  ${JSON.stringify(n.id)} [label=${JSON.stringify(`${n.id}\n${n.type}`)}, shape=${shape[n.kind]}];`);
  for (const n of nodes)
    for (const input of n.inputs)
      lines.push(`  ${JSON.stringify(input.node)} -> ${JSON.stringify(n.id)} [label=${JSON.stringify(input.port)}];`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function toMermaid(nodes: readonly GraphNode[]): string {
  const safe = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');
  const open = { source: '[(', transform: '[', sink: '[/' } as const;
  const close = { source: ')]', transform: ']', sink: '/]' } as const;
  const lines = ['flowchart LR'];
  for (const n of nodes) lines.push(`  ${safe(n.id)}${open[n.kind]}"${n.id}<br/>${n.type}"${close[n.kind]}`);
  for (const n of nodes)
    for (const input of n.inputs) lines.push(`  ${safe(input.node)} -->|${input.port}| ${safe(n.id)}`);
  return lines.join('\n') + '\n';
}
