import path from 'node:path';
import { z } from 'zod';

/** What a path option names: a file the node reads or writes, or a folder it writes into. */
export interface PathMeta {
  role: 'input' | 'output';
  target: 'file' | 'folder';
}

/** Marks an option as a path, so it is resolved against the pipeline file's folder and checked before the run. */
const pathRegistry = z.registry<PathMeta>();

/**
 * A path: never empty nor only spaces once parameters are interpolated (the working folder or,
 * in `${dir}/x`, the root would be meant by nobody).
 */
function pathSchema(description: string, meta: PathMeta) {
  const schema = z
    .string()
    .refine((value) => value.trim() !== '', {
      error: (issue) => `expected a non-empty path, got ${JSON.stringify(issue.input)}`,
    })
    .describe(description);
  pathRegistry.add(schema, meta);
  return schema;
}

/** A file the node reads; `-` means standard input. */
export const inputPath = (description: string) => pathSchema(description, { role: 'input', target: 'file' });

/** A file the node writes; `-` means standard output. */
export const outputPath = (description: string) => pathSchema(description, { role: 'output', target: 'file' });

/** A folder the node writes into (a run folder); it may exist already. */
export const outputFolder = (description: string) => pathSchema(description, { role: 'output', target: 'folder' });

/** A path option's value that names no file: `-` (a standard stream), or blank (an error of its own). */
export const isStreamOrBlank = (value: string): boolean => value === '-' || value.trim() === '';

function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    const def = (current as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'prefault') && def.innerType)
      current = def.innerType;
    else return current;
  }
}

/** What each top-level path option of an object schema names. */
export function pathOptionMeta(schema: z.ZodType): Map<string, PathMeta> {
  const out = new Map<string, PathMeta>();
  const shape = (unwrap(schema) as unknown as { shape?: Record<string, z.ZodType> }).shape;
  for (const [key, value] of Object.entries(shape ?? {})) {
    const meta = pathRegistry.get(unwrap(value));
    if (meta) out.set(key, meta);
  }
  return out;
}

/** The path role of each top-level option of an object schema. */
export function pathOptions(schema: z.ZodType): Map<string, 'input' | 'output'> {
  return new Map([...pathOptionMeta(schema)].map(([key, meta]) => [key, meta.role]));
}

/**
 * Resolves relative path options: against the working directory
 * when they came from `--set`, else the pipeline's folder.
 */
export function resolvePaths(
  schema: z.ZodType,
  options: Record<string, unknown>,
  pipelineDir: string,
  fromCommandLine: ReadonlySet<string>,
): Record<string, unknown> {
  const resolved = { ...options };
  for (const key of pathOptions(schema).keys()) {
    const value = resolved[key];
    if (typeof value !== 'string' || isStreamOrBlank(value)) continue;
    resolved[key] = path.resolve(fromCommandLine.has(key) ? process.cwd() : pipelineDir, value);
  }
  return resolved;
}

interface JsonProperty {
  type?: string | string[];
  const?: unknown;
  default?: unknown;
  description?: string;
  enum?: unknown[];
  items?: { type?: string };
  anyOf?: JsonProperty[];
}

/** An option's type as `animind nodes` shows it: `integer`, `string[]`, `"a"|"b"`, `"auto"|integer`. */
function typeName(prop: JsonProperty): string {
  if (prop.anyOf) return prop.anyOf.map(typeName).join('|');
  if (prop.const !== undefined) return JSON.stringify(prop.const);
  if (prop.enum) return prop.enum.map((v) => JSON.stringify(v)).join('|');
  return prop.type === 'array' ? `${prop.items?.type ?? 'any'}[]` : String(prop.type ?? 'any');
}

/** One line per option, for `animind nodes`. */
export function describeOptions(
  schema: z.ZodType,
): { name: string; type: string; default?: unknown; description?: string; required: boolean }[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonProperty>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, prop]) => ({
    name,
    type: typeName(prop),
    default: prop.default,
    description: prop.description,
    required: (json.required ?? []).includes(name) && prop.default === undefined,
  }));
}
