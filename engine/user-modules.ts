import { pathToFileURL } from 'node:url';
import { AnimindError, attributeToNode, DataError } from './errors.ts';
import type { NodeDefinition } from './node.ts';

/**
 * How a user's node module (`use: ./my-node.ts`) is imported. Run from source under tsx (the
 * tests, the benchmark) a plain import loads TypeScript already; the CLI sets an importer that
 * registers its module hooks first (bin/animind.mjs, engine/compiled-cli.mjs).
 */
let importer = (url: string): Promise<unknown> => import(url);

export function setUserModuleImporter(importUrl: (url: string) => Promise<unknown>): void {
  importer = importUrl;
}

/** Every user module imported, by path, with the ids of the nodes it has made so far. */
const userModules = new Map<string, Set<string>>();

export function importUserModule(file: string): Promise<unknown> {
  if (!userModules.has(file)) userModules.set(file, new Set());
  return importer(pathToFileURL(file).href);
}

/** A user module's node, as it is but for noting the id of each node it makes (for userModuleFailure). */
export function userModuleNode(def: NodeDefinition, file: string): NodeDefinition {
  const create = def.create as (this: NodeDefinition, ...args: unknown[]) => unknown;
  return {
    ...def,
    create(this: NodeDefinition, ...args: unknown[]) {
      userModules.get(file)?.add((args[0] as { id: string }).id);
      return create.apply(def, args);
    },
  } as NodeDefinition;
}

/** Where a stack frame points: `at fn (<where>:<line>:<column>)` or `at <where>:<line>:<column>`. */
const FRAME = /^at (?:async )?(?:[^(]* \()?([^()]+):(\d+):\d+\)?$/;

/** The first frame of an error's stack in a user module: its file and line. */
export function userModuleFrame(error: unknown): { file: string; line: number } | undefined {
  const stack = error instanceof Error ? error.stack : undefined;
  if (!stack) return undefined;
  // A frame names a module by its path, or by its URL where no source map applies.
  const files = new Map(
    [...userModules.keys()].flatMap((file) => [[file, file] as const, [pathToFileURL(file).href, file] as const]),
  );
  for (const frame of stack.split('\n')) {
    const [, where = '', line] = FRAME.exec(frame.trim()) ?? [];
    const file = files.get(where);
    if (file) return { file, line: Number(line) };
  }
  return undefined;
}

/**
 * What a promise that a user module let reject unobserved failed with, as one line: naming its node
 * where the module has made exactly one (several nodes of one module cannot be told apart by a
 * stack), and the module's file and line of its first frame there; undefined when no frame of the
 * reason's stack lies in a user module.
 */
export function userModuleFailure(reason: unknown): AnimindError | undefined {
  const frame = userModuleFrame(reason);
  if (!frame) return undefined;
  const nodes = [...userModules.get(frame.file)!];
  // A DataError or ConfigError is the module's own one-line error, as it meant it.
  if (reason instanceof AnimindError) return nodes.length === 1 ? attributeToNode(reason, nodes[0]!) : reason;
  const message = reason instanceof Error ? reason.message : String(reason);
  const which = nodes.length > 1 ? ` in one of its nodes ${nodes.map((id) => `'${id}'`).join(', ')}` : '';
  const error = new DataError(`unhandled promise rejection${which}: ${message}`, {
    file: frame.file,
    line: frame.line,
  });
  return nodes.length === 1 ? attributeToNode(error, nodes[0]!) : error;
}
