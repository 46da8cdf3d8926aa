import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import type { NodeDefinition } from './node.ts';
import { builtinNodes } from './builtins.ts';
import { importUserModule } from './user-modules.ts';

const builtins = new Map<string, NodeDefinition>(builtinNodes.map((node) => [node.type, node]));

export function listBuiltins(): NodeDefinition[] {
  return [...builtins.values()].sort((a, b) => a.type.localeCompare(b.type));
}

export function isPathReference(use: string): boolean {
  return use.startsWith('./') || use.startsWith('../') || path.isAbsolute(use);
}

/** Resolves a `use:` value to a node definition: a built-in name, or a path to a user's module whose default export is a node. */
export async function resolveNodeType(use: string, pipelineDir: string): Promise<NodeDefinition | string> {
  if (!isPathReference(use)) {
    const found = builtins.get(use);
    if (found) return found;
    const suggestion = closest(use, [...builtins.keys()]);
    return `unknown node type '${use}'${suggestion ? ` (did you mean '${suggestion}'?)` : ''}; run 'animind nodes' for the list`;
  }
  const file = path.resolve(pipelineDir, use);
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
