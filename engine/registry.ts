import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import type { NodeDefinition } from './node.ts';
import { importUserModule } from './user-modules.ts';

/**
 * The node types a pipeline's `use:` can name: the catalogue it was made with (the CLI passes the
 * built-ins, cli/builtin-nodes.ts), plus any user module named by a path. The engine itself knows
 * no node.
 */
export class NodeRegistry {
  private readonly byType: ReadonlyMap<string, NodeDefinition>;

  constructor(nodes: readonly NodeDefinition[]) {
    this.byType = new Map(nodes.map((node) => [node.type, node]));
  }

  list(): NodeDefinition[] {
    return [...this.byType.values()].sort((a, b) => a.type.localeCompare(b.type));
  }

  /**
   * A `use:` value's node: a registered type, or a path to a
   * user's module whose default export is a node; else why not.
   */
  async resolve(use: string, pipelineDir: string): Promise<NodeDefinition | string> {
    if (!isPathReference(use)) {
      const found = this.byType.get(use);
      if (found) return found;
      const suggestion = closest(use, [...this.byType.keys()]);
      return (
        `unknown node type '${use}'${suggestion ? ` (did you mean '${suggestion}'?)` : ''}; ` +
        `run 'animind nodes' for the list`
      );
    }
    return loadUserNode(path.resolve(pipelineDir, use));
  }
}

export function isPathReference(use: string): boolean {
  return use.startsWith('./') || use.startsWith('../') || path.isAbsolute(use);
}

async function loadUserNode(file: string): Promise<NodeDefinition | string> {
  if (!existsSync(file)) return `node module ${file} does not exist`;
  let loaded: { default?: unknown };
  try {
    loaded = (await importUserModule(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    return `cannot load node module ${file}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
  const node = loaded.default as Partial<NodeDefinition> | undefined;
  if (!node || typeof node !== 'object' || typeof node.create !== 'function' || !node.options || !node.kind)
    return `node module ${file} must default-export a node made with defineSource, defineTransform or defineSink`;
  return node as NodeDefinition;
}

/** The known name nearest to a misspelt one, when it is near enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}
