import { describeOptions } from '../engine/options.ts';
import { portNames, sidePorts } from '../engine/validate.ts';
import { builtins } from './builtin-nodes.ts';

/** The node catalogue as text (for people) or JSON (for tools). */
export function listNodes(json: boolean): string {
  const nodes = builtins.list().map((node) => ({
    type: node.type,
    kind: node.kind,
    description: node.description,
    inputs: portNames(node).map((p) => (sidePorts(node).includes(p) ? `${p} (side)` : p)),
    variadic: node.kind !== 'source' && Boolean(node.variadic),
    options: describeOptions(node.options),
  }));
  if (json) return JSON.stringify(nodes, null, 2) + '\n';
  const lines: string[] = [];
  for (const node of nodes) {
    const inputs = node.inputs.length
      ? `  inputs: ${node.inputs.join(', ')}${node.variadic ? ' (any number)' : ''}`
      : '';
    lines.push(`${node.type} (${node.kind})${inputs}`, `  ${node.description}`);
    for (const o of node.options) {
      const dflt = o.default !== undefined ? ` = ${JSON.stringify(o.default)}` : o.required ? ' (required)' : '';
      lines.push(`    ${o.name}: ${o.type}${dflt}${o.description ? `  ${o.description}` : ''}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
