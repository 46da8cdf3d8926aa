import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError, ValidationError } from '../engine/errors.ts';
import type { ParamOverride, ParamValue } from '../engine/params.ts';
import { readPipelineFile } from '../engine/pipeline-file.ts';
import { closest } from '../engine/registry.ts';

/** The sections a config file may have; each phase reads its own and ignores the other's keys. */
const SECTIONS = ['prep', 'train', 'eval'] as const;

export interface TomlFile {
  file: string;
  dir: string;
  text: string;
  data: Record<string, unknown>;
}

/** Reads and parses a TOML config; a syntax error names its line, an unknown section its line too. */
export function readToml(file: string): TomlFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`cannot read config file ${file}: expected a readable TOML file`, { file });
  }
  let data: Record<string, unknown>;
  try {
    data = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    throw new ConfigError(`invalid TOML: ${error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')}`, {
      file,
      line: error.line,
    });
  }
  for (const key of Object.keys(data))
    if (!(SECTIONS as readonly string[]).includes(key))
      throw new ConfigError(
        `unknown top-level key '${key}': expected the sections ${SECTIONS.map((s) => `[${s}]`).join(', ')}`,
        {
          file,
          line: keyLine(text, [key]),
        },
      );
  return { file, dir: path.dirname(path.resolve(file)), text, data };
}

/**
 * The line where a dotted key is set, by a plain scan of `[table]` headers and `key =` lines
 * (smol-toml keeps no positions for values). Falls back to the nearest enclosing key or table,
 * so a missing key points at its section.
 */
export function keyLine(text: string, keyPath: readonly (string | number)[]): number | undefined {
  const lines = text.split(/\r?\n/);
  const unquote = (part: string) => part.trim().replace(/^["']|["']$/g, '');
  const found = new Map<string, number>();
  let table: string[] = [];
  lines.forEach((raw, index) => {
    const header = /^\s*\[{1,2}\s*([^\]]+?)\s*\]{1,2}\s*(#.*)?$/.exec(raw);
    const assignment = /^\s*([A-Za-z0-9_\-."' ]+?)\s*=/.exec(raw);
    let full: string[] | undefined;
    if (header) full = table = header[1]!.split('.').map(unquote);
    else if (assignment) full = [...table, ...assignment[1]!.split('.').map(unquote)];
    if (full && !found.has(full.join('.'))) found.set(full.join('.'), index + 1);
  });
  const parts = keyPath.map(String);
  for (let length = parts.length; length > 0; length--) {
    const line = found.get(parts.slice(0, length).join('.'));
    if (line) return line;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value !== null && typeof value === 'object') return 'a table';
  return `${typeof value} ${JSON.stringify(value)}`;
}

const valueAt = (data: unknown, keys: readonly PropertyKey[]) =>
  keys.reduce<unknown>(
    (node, key) =>
      node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined,
    data,
  );

/**
 * Validates one section with a zod schema, turning every issue into a ConfigError that names the
 * key, the file and the key's line (the section's, for a key left out and taken from `defaults`);
 * all of them are thrown together.
 */
export function parseSection<S extends z.ZodType>(
  toml: TomlFile,
  section: (typeof SECTIONS)[number],
  schema: S,
  defaults: Readonly<Record<string, unknown>> = {},
): z.output<S> {
  const given = toml.data[section];
  if (given === undefined)
    throw new ConfigError(`no [${section}] section: the ${section} phase reads its settings from it`, {
      file: toml.file,
    });
  const raw = given !== null && typeof given === 'object' ? { ...defaults, ...given } : given;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems: ConfigError[] = [];
  for (const issue of parsed.error.issues) {
    const at = [section, ...issue.path.map(String)];
    if (issue.code === 'unrecognized_keys') {
      const known = Object.keys((schemaAt(schema, issue.path)._zod.def as { shape?: object }).shape ?? {});
      for (const key of issue.keys) {
        const guess = closest(key, known);
        const hint = guess ? ` (did you mean '${guess}'?)` : `; known keys: ${known.join(', ')}`;
        problems.push(
          new ConfigError(`unknown key '${key}' in [${at.join('.')}]${hint}`, {
            file: toml.file,
            line: keyLine(toml.text, [...at, key]),
          }),
        );
      }
      continue;
    }
    const message =
      issue.code === 'invalid_type'
        ? `expected ${isInteger(schemaAt(schema, issue.path)) ? 'integer' : issue.expected}, ` +
          `got ${describe(valueAt(raw, issue.path))}`
        : issue.message;
    problems.push(new ConfigError(message, { file: toml.file, line: keyLine(toml.text, at), key: at.join('.') }));
  }
  problems.sort((a, b) => (a.location.line ?? 0) - (b.location.line ?? 0));
  throw problems.length === 1 ? problems[0]! : new ValidationError(problems);
}

interface SchemaDef {
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  format?: string;
}
type Schema = { _zod: { def: SchemaDef } };

/** The schema at a path through nested tables and arrays, with defaults and refinements unwrapped. */
function schemaAt(schema: z.ZodType, keys: readonly PropertyKey[]): Schema {
  const unwrap = (node: Schema): Schema => {
    for (let def = node._zod.def; def.innerType ?? def.in; def = node._zod.def) node = (def.innerType ?? def.in)!;
    return node;
  };
  let current = unwrap(schema as unknown as Schema);
  for (const key of keys) {
    const def = current._zod.def;
    const next = typeof key === 'number' ? def.element : def.shape?.[String(key)];
    if (!next) break;
    current = unwrap(next);
  }
  return current;
}

const isInteger = (schema: Schema) => schema._zod.def.format === 'safeint';

/** Resolves a path written in the config against the config file's folder; an empty string stays unset. */
export const resolveFrom = (dir: string) => (value: string) => (value === '' ? value : path.resolve(dir, value));

/**
 * The keys of a section that set pipeline parameters, as overrides: `params` maps each parameter
 * to its dotted key under the section. A key the file leaves out sets nothing, so the parameter's
 * own default applies (the pipeline file holds the one default of each setting). Values keep their
 * TOML types and point at their key's line.
 */
export function paramOverrides(
  toml: TomlFile,
  section: (typeof SECTIONS)[number],
  params: Readonly<Record<string, string>>,
  values: Readonly<Record<string, unknown>>,
): Record<string, ParamOverride> {
  const overrides: Record<string, ParamOverride> = {};
  for (const [param, key] of Object.entries(params)) {
    const given = valueAt(values, key.split('.'));
    if (given === undefined) continue;
    const at = [section, ...key.split('.')];
    overrides[param] = { value: given, location: { file: toml.file, line: keyLine(toml.text, at), key: at.join('.') } };
  }
  return overrides;
}

/**
 * The defaults of a pipeline's parameters under the config keys that set them (`params` maps each
 * parameter to its key), paths left out: a config gives those itself, relative to its own folder.
 */
export function paramDefaults(pipeline: string, params: Readonly<Record<string, string>>): Record<string, ParamValue> {
  const { spec } = readPipelineFile(pipeline);
  const defaults: Record<string, ParamValue> = {};
  for (const param of spec.paramSpecs) {
    const key = params[param.name];
    if (key !== undefined && param.type.base !== 'path') defaults[key] = param.default;
  }
  return defaults;
}
