import path from 'node:path';
import { z } from 'zod';

/** Marks an option as a file path, so it is resolved against the pipeline file's folder and checked before the run. */
const pathRegistry = z.registry<{ role: 'input' | 'output' }>();

/** A file the node reads; `-` means standard input. */
export const inputPath = (description: string) => {
  const schema = z.string().min(1).describe(description);
  pathRegistry.add(schema, { role: 'input' });
  return schema;
};

/** A file or folder the node writes; `-` means standard output. */
export const outputPath = (description: string) => {
  const schema = z.string().min(1).describe(description);
  pathRegistry.add(schema, { role: 'output' });
  return schema;
};

function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    const def = (current as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'prefault') && def.innerType)
      current = def.innerType;
    else return current;
  }
}

/** The path role of each top-level option of an object schema. */
export function pathOptions(schema: z.ZodType): Map<string, 'input' | 'output'> {
  const out = new Map<string, 'input' | 'output'>();
  const shape = (unwrap(schema) as unknown as { shape?: Record<string, z.ZodType> }).shape;
  for (const [key, value] of Object.entries(shape ?? {})) {
    const meta = pathRegistry.get(unwrap(value));
    if (meta) out.set(key, meta.role);
  }
  return out;
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
    if (typeof value !== 'string' || value === '-' || value === '') continue;
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
