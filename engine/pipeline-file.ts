import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Node as YamlNode,
  type Pair,
  type YAMLMap,
} from 'yaml';
import { ConfigError, type Location } from './errors.ts';
import {
  parseParam,
  parseParamType,
  paramText,
  type ParamOverride,
  type ParamSpec,
  type ParamValue,
} from './params.ts';

/** One `from` entry: which node feeds which input port. */
export interface Edge {
  port: string | null;
  node: string;
  line: number;
}

export interface NodeSpec {
  id: string;
  use: string;
  line: number;
  from: Edge[];
  /** Whether `from` was written as a map of named ports. */
  namedFrom: boolean;
  stage?: string;
  options: Record<string, unknown>;
  optionLines: Record<string, number>;
  /**
   * Option values whose text came from a `--set` parameter:
   * relative paths in them resolve against the working directory.
   */
  fromCommandLine: Set<string>;
  /** Where an option was set outside the pipeline file (a config file key), so a problem with it points there. */
  optionSources: Record<string, Location>;
}

export interface PipelineSpec {
  file: string;
  dir: string;
  name: string;
  seed: number;
  /** Rows per batch the sources hand on: an engine setting, since any value gives the same bytes. */
  batchSize: number;
  stages: string[];
  /** Declared parameters, in file order. */
  paramSpecs: ParamSpec[];
  /** Every parameter's value after overrides. */
  params: Record<string, ParamValue>;
  /** Where parameters given by a config file were set (its key and line). */
  paramSources: Record<string, Location>;
  nodes: NodeSpec[];
  /**
   * Nodes switched off with `enabled: false`: left out before validation,
   * kept by id so a reference to one can say why it is missing.
   */
  disabled: string[];
}

/** The engine's default rows per batch; at 10M prep rows 1024 ran faster and smaller than 2048 (bench/README.md). */
export const DEFAULT_BATCH_SIZE = 1024;

const TOP_LEVEL = new Set(['name', 'description', 'seed', 'batch_size', 'params', 'stages', 'nodes']);

/** What reading a file needs besides the file: values that replace parameter defaults, and the batch size. */
export interface ReadOptions {
  overrides?: Readonly<Record<string, ParamOverride>>;
  batchSize?: number;
}

interface Reader {
  file: string;
  lineOf(node: unknown): number;
  fail(message: string, line: number): void;
  /** A problem located elsewhere (a config file) or nowhere (a `--set` value). */
  add(problem: ConfigError): void;
}

/** Reads a pipeline file, interpolating `${param}` references; every problem found is returned, none thrown. */
export function readPipelineFile(
  file: string,
  read: ReadOptions = {},
): { spec: PipelineSpec; problems: ConfigError[] } {
  const problems: ConfigError[] = [];
  const { doc, lines } = parseYaml(file);
  const reader: Reader = {
    file,
    lineOf: (node) => ((node as YamlNode | null)?.range ? lines.linePos((node as YamlNode).range![0]).line : 1),
    fail: (message, line) => problems.push(new ConfigError(message, { file, line })),
    add: (problem) => problems.push(problem),
  };
  for (const error of doc.errors)
    reader.fail(`invalid YAML: ${error.message.split('\n')[0]}`, lines.linePos(error.pos[0]).line);
  const spec: PipelineSpec = {
    file,
    dir: path.dirname(path.resolve(file)),
    name: path.basename(file).replace(/\.ya?ml$/, ''),
    seed: 0,
    batchSize: DEFAULT_BATCH_SIZE,
    stages: [],
    paramSpecs: [],
    params: {},
    paramSources: {},
    nodes: [],
    disabled: [],
  };
  const root = doc.contents;
  if (problems.length) return { spec, problems };
  if (!isMap(root)) {
    reader.fail('expected a mapping with name, seed, params and nodes', 1);
    return { spec, problems };
  }
  const interpolate = readTopLevel(root, spec, reader, read);
  const nodesPair = root.items.find((p) => scalarValue(p.key) === 'nodes');
  if (!nodesPair || !isMap(nodesPair.value)) {
    reader.fail(
      'nodes: expected a mapping of node id to node definition',
      nodesPair ? reader.lineOf(nodesPair.key) : 1,
    );
    return { spec, problems };
  }
  for (const pair of nodesPair.value.items as Pair<YamlNode, YamlNode>[]) readNode(pair, spec, reader, interpolate);
  return { spec, problems };
}

function parseYaml(file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`cannot read pipeline file ${file}: expected a readable YAML file`, { file });
  }
  const lines = new LineCounter();
  return { doc: parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines };
}

/** Replaces `${param}` references in an option value; `onParam` hears of each parameter given from outside the file. */
type Interpolate = (raw: unknown, line: number, onOverride?: (param: string) => void) => unknown;

/** Reads everything but the nodes; returns the interpolation that the nodes' options go through. */
function readTopLevel(root: YAMLMap, spec: PipelineSpec, reader: Reader, read: ReadOptions): Interpolate {
  let seedEntry: { value: unknown; line: number } | undefined;
  let batchEntry: { value: unknown; line: number } | undefined;
  for (const pair of root.items) {
    const key = String(scalarValue(pair.key));
    const line = reader.lineOf(pair.key);
    const value = pair.value as YamlNode | null;
    if (!TOP_LEVEL.has(key))
      reader.fail(`unknown top-level key '${key}': expected one of ${[...TOP_LEVEL].join(', ')}`, line);
    else if (key === 'name') spec.name = String(scalarValue(value));
    else if (key === 'seed') seedEntry = { value: scalarValue(value), line };
    else if (key === 'batch_size') batchEntry = { value: scalarValue(value), line };
    else if (key === 'stages') {
      if (!isSeq(value)) reader.fail('stages: expected a list of stage names', line);
      else spec.stages = value.items.map((item) => String(scalarValue(item)));
    } else if (key === 'params') readParams(value, line, spec, reader);
  }
  applyOverrides(spec, reader, read.overrides ?? {});
  const interpolate = interpolator(spec, reader, new Set(Object.keys(read.overrides ?? {})));
  // The seed may be a `${param}`, so `--set seed=7` (or a TOML config) can change it like any option.
  if (seedEntry)
    spec.seed = integerSetting('seed', interpolate(seedEntry.value, seedEntry.line), seedEntry.line, reader) ?? 0;
  const batchSize =
    read.batchSize ??
    (batchEntry &&
      integerSetting('batch_size', interpolate(batchEntry.value, batchEntry.line), batchEntry.line, reader));
  if (batchSize !== undefined) {
    if (batchSize < 1) reader.fail(`batch_size: expected a positive integer, got ${batchSize}`, batchEntry?.line ?? 1);
    else spec.batchSize = batchSize;
  }
  return interpolate;
}

function integerSetting(key: string, value: unknown, line: number, reader: Reader): number | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  reader.fail(`${key}: expected an integer, got ${JSON.stringify(value)}`, line);
  return undefined;
}

/**
 * `params:` declares each parameter once: `name: { type, default, description }`, or a bare
 * default whose own type (integer, number, boolean, string) is the parameter's.
 */
function readParams(value: YamlNode | null, line: number, spec: PipelineSpec, reader: Reader): void {
  if (!isMap(value)) {
    reader.fail('params: expected a mapping of name: { type, default, description }', line);
    return;
  }
  for (const pair of value.items as Pair<YamlNode, YamlNode>[]) {
    const name = String(scalarValue(pair.key));
    const at = reader.lineOf(pair.key);
    const declared = declaration(pair.value, `params.${name}`, at, reader);
    if (!declared) continue;
    try {
      const parsed = parseParam({ name, type: declared.type }, declared.default, false, `params.${name}: default`, {
        file: reader.file,
        line: at,
      });
      spec.paramSpecs.push({ name, type: declared.type, default: parsed, description: declared.description, line: at });
      spec.params[name] = parsed;
    } catch (error) {
      reader.fail((error as ConfigError).message, at);
    }
  }
}

function declaration(node: YamlNode | null, where: string, line: number, reader: Reader) {
  const raw: unknown = node?.toJSON();
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const { type, default: dflt, description = '', ...rest } = raw as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length)
      return void reader.fail(`${where}: unknown key '${unknown[0]}': expected type, default and description`, line);
    if (typeof type !== 'string')
      return void reader.fail(`${where}: expected a type (integer, number, boolean, string, path, ...)`, line);
    const parsed = parseParamType(type);
    if (typeof parsed === 'string') return void reader.fail(`${where}: ${parsed}`, line);
    if (dflt === undefined || dflt === null) return void reader.fail(`${where}: expected a default`, line);
    return { type: parsed, default: dflt, description: String(description) };
  }
  const inferred =
    typeof raw === 'number'
      ? Number.isInteger(raw)
        ? 'integer'
        : 'number'
      : typeof raw === 'boolean'
        ? 'boolean'
        : typeof raw === 'string'
          ? 'string'
          : undefined;
  if (!inferred) return void reader.fail(`${where}: expected { type, default, description } or a scalar default`, line);
  return {
    type: parseParamType(inferred) as Exclude<ReturnType<typeof parseParamType>, string>,
    default: raw,
    description: '',
  };
}

function applyOverrides(spec: PipelineSpec, reader: Reader, overrides: Readonly<Record<string, ParamOverride>>): void {
  const declared = new Map(spec.paramSpecs.map((p) => [p.name, p]));
  for (const [name, override] of Object.entries(overrides)) {
    const param = declared.get(name);
    if (!param) {
      const names = spec.paramSpecs.map((p) => p.name).join(', ') || 'none';
      reader.add(
        new ConfigError(`--set ${name}: no such parameter; declared parameters are ${names}`, { file: reader.file }),
      );
      continue;
    }
    const fromText = override.text === true;
    // A config value's location names its key already.
    const where = fromText ? `--set ${name}` : override.location?.key ? '' : name;
    try {
      spec.params[name] = parseParam(param, override.value, fromText, where, override.location ?? {});
      if (override.location?.file) spec.paramSources[name] = override.location;
    } catch (error) {
      // A `--set` value has no line in the pipeline file; a config value names its own file and line.
      const problem = error as ConfigError;
      reader.add(problem.location.file ? problem : new ConfigError(problem.message, { file: reader.file }));
    }
  }
}

function interpolator(spec: PipelineSpec, reader: Reader, overridden: ReadonlySet<string>): Interpolate {
  const known = () => Object.keys(spec.params).join(', ') || 'none';
  const interpolate: Interpolate = (raw, line, onOverride) => {
    if (typeof raw === 'string') {
      // A value that is one reference keeps the parameter's type (a number stays a number).
      const whole = /^\$\{([^}]*)\}$/.exec(raw);
      if (whole && whole[1]! in spec.params) {
        if (overridden.has(whole[1]!)) onOverride?.(whole[1]!);
        return spec.params[whole[1]!];
      }
      return raw.replace(/\$\{([^}]*)\}/g, (match, name: string) => {
        if (!(name in spec.params)) {
          reader.fail(`unknown parameter \${${name}}: declared parameters are ${known()}`, line);
          return match;
        }
        if (overridden.has(name)) onOverride?.(name);
        return paramText(spec.params[name]!);
      });
    }
    if (Array.isArray(raw)) return raw.map((item) => interpolate(item, line, onOverride));
    if (raw && typeof raw === 'object')
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v, line, onOverride)]));
    return raw;
  };
  return interpolate;
}

function readNode(pair: Pair<YamlNode, YamlNode>, spec: PipelineSpec, reader: Reader, interpolate: Interpolate): void {
  const id = String(scalarValue(pair.key));
  const line = reader.lineOf(pair.key);
  const body = pair.value;
  if (!isMap(body)) return reader.fail(`node '${id}': expected a mapping with 'use' and its options`, line);
  const node: NodeSpec = {
    id,
    use: '',
    line,
    from: [],
    namedFrom: false,
    options: {},
    optionLines: {},
    fromCommandLine: new Set(),
    optionSources: {},
  };
  let enabled: { value: unknown; line: number } | undefined;
  for (const item of body.items as Pair<YamlNode, YamlNode>[]) {
    const key = String(scalarValue(item.key));
    const keyLine = reader.lineOf(item.key);
    const value = item.value;
    if (key === 'use') node.use = String(scalarValue(value));
    else if (key === 'stage') node.stage = String(scalarValue(value));
    else if (key === 'description') continue;
    else if (key === 'enabled') enabled = { value: interpolate(value?.toJSON() ?? null, keyLine), line: keyLine };
    else if (key === 'from') readFrom(node, value, keyLine, reader);
    else {
      node.optionLines[key] = keyLine;
      node.options[key] = interpolate(value?.toJSON() ?? null, keyLine, (param) => {
        node.fromCommandLine.add(key);
        const source = spec.paramSources[param];
        if (source) node.optionSources[key] = source;
      });
    }
  }
  if (enabled && enabled.value !== true && enabled.value !== 'true') {
    if (enabled.value === false || enabled.value === 'false') spec.disabled.push(id);
    else
      reader.fail(`node '${id}': enabled: expected true or false, got ${JSON.stringify(enabled.value)}`, enabled.line);
    return;
  }
  if (!node.use) reader.fail(`node '${id}': missing 'use' (the node type)`, line);
  if (node.stage !== undefined && !spec.stages.includes(node.stage))
    reader.fail(`node '${id}': stage '${node.stage}' is not listed under stages`, line);
  spec.nodes.push(node);
}

function readFrom(node: NodeSpec, value: YamlNode | null, line: number, reader: Reader): void {
  if (isSeq(value)) {
    for (const entry of value.items as YamlNode[])
      node.from.push({ port: null, node: String(scalarValue(entry)), line: reader.lineOf(entry) });
  } else if (isMap(value)) {
    node.namedFrom = true;
    for (const entry of value.items as Pair<YamlNode, YamlNode>[])
      node.from.push({
        port: String(scalarValue(entry.key)),
        node: String(scalarValue(entry.value)),
        line: reader.lineOf(entry.key),
      });
  } else if (isScalar(value)) {
    node.from.push({ port: null, node: String(value.value), line });
  } else reader.fail(`node '${node.id}': from: expected a node id, a list of ids or a map of port: id`, line);
}

function scalarValue(node: unknown): unknown {
  if (node === null || node === undefined) return undefined;
  if (isScalar(node)) return node.value;
  if (isMap(node) || isSeq(node)) return (node as YamlNode).toJSON();
  return node;
}

/** `name=value` pairs from `--set`, checked for shape; their values are parsed into each parameter's type later. */
export function parseOverrides(pairs: readonly string[]): Record<string, ParamOverride> {
  const out: Record<string, ParamOverride> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${pair}: expected name=value`);
    out[pair.slice(0, eq)] = { value: pair.slice(eq + 1), text: true };
  }
  return out;
}
