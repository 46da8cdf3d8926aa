import path from 'node:path';
import { existsSync } from 'node:fs';
import type { NodeDefinition } from './node.ts';
import { importUserModule, userModuleFrame, userModuleNode } from './user-modules.ts';

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
    loaded = (await importUserModule(file)) as { default?: unknown };
  } catch (error) {
    return `cannot load node module ${loadFailure(file, error)}`;
  }
  const node = loaded.default as Partial<NodeDefinition> | undefined;
  if (!node || typeof node !== 'object' || typeof node.create !== 'function' || !node.options || !node.kind)
    return `node module ${file} must default-export a node made with defineSource, defineTransform or defineSink`;
  return userModuleNode(node as NodeDefinition, file);
}

/** esbuild's line for each error in a module tsx compiles: `<file>:<line>:<column>: ERROR: <text>`. */
const COMPILE_ERROR = /^(.+):(\d+):(\d+): ERROR: (.*)$/;

/**
 * Why a user module did not load, on one line, after "cannot load node module ": where (the
 * module, with the line when it is known) and what. A module that does not compile gives tsx's
 * "Transform failed with 1 error:" with esbuild's lines below it; one that throws as it runs, the
 * line of its first frame in the module.
 */
function loadFailure(file: string, error: unknown): string {
  const [first = '', ...rest] = (error instanceof Error ? error.message : String(error)).split('\n');
  const compile = rest.map((line) => COMPILE_ERROR.exec(line)).filter((match) => match !== null);
  if (/^Transform failed with \d+ errors?:$/.test(first) && compile.length) {
    const [, where, line, column, text] = compile[0]!;
    const more = compile.length > 1 ? ` (and ${compile.length - 1} more)` : '';
    // esbuild counts columns from 0, editors from 1.
    return `${where === file ? '' : `${file}: `}${where}:${line}:${Number(column) + 1}: ${text}${more}`;
  }
  const frame = userModuleFrame(error);
  return `${frame ? `${frame.file}:${frame.line}` : file}: ${first}`;
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
