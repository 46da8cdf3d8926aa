import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Pair } from 'yaml';
import { ConfigError } from './errors.ts';

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
  /** Option values whose text came from a `--set` parameter: relative paths in them resolve against the working directory. */
  fromCommandLine: Set<string>;
}

export interface PipelineSpec {
  file: string;
  dir: string;
  name: string;
  seed: number;
  stages: string[];
  params: Record<string, string>;
  nodes: NodeSpec[];
  /** Nodes switched off with `enabled: false`: left out before validation, kept by id so a reference to one can say why it is missing. */
  disabled: string[];
}

const TOP_LEVEL = new Set(['name', 'description', 'seed', 'params', 'stages', 'nodes']);

/** Reads a pipeline file, interpolating `${param}` references; every problem found is returned, none thrown. */
export function readPipelineFile(
  file: string,
  overrides: Record<string, string> = {},
): { spec: PipelineSpec; problems: ConfigError[] } {
  const problems: ConfigError[] = [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`cannot read pipeline file ${file}: expected a readable YAML file`, { file });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineOf = (node: YamlNode | null | undefined): number =>
    node?.range ? lines.linePos(node.range[0]).line : 1;
  const fail = (message: string, line: number) => problems.push(new ConfigError(message, { file, line }));

  for (const error of doc.errors) fail(`invalid YAML: ${error.message.split('\n')[0]}`, lines.linePos(error.pos[0]).line);
  const spec: PipelineSpec = {
    file,
    dir: path.dirname(path.resolve(file)),
    name: path.basename(file).replace(/\.ya?ml$/, ''),
    seed: 0,
    stages: [],
    params: {},
    nodes: [],
    disabled: [],
  };
  if (problems.length) return { spec, problems };
  const root = doc.contents;
  if (!isMap(root)) {
    fail('expected a mapping with name, seed, params and nodes', 1);
    return { spec, problems };
  }

  const cliParams = new Set(Object.keys(overrides));
  let seedEntry: { value: unknown; line: number } | undefined;
  for (const pair of root.items) {
    const key = String(scalarValue(pair.key));
    const line = lineOf(pair.key as YamlNode);
    const value = pair.value as YamlNode | null;
    if (!TOP_LEVEL.has(key)) {
      fail(`unknown top-level key '${key}': expected one of ${[...TOP_LEVEL].join(', ')}`, line);
    } else if (key === 'name') {
      spec.name = String(scalarValue(value));
    } else if (key === 'seed') {
      seedEntry = { value: scalarValue(value), line };
    } else if (key === 'stages') {
      if (!isSeq(value)) fail('stages: expected a list of stage names', line);
      else spec.stages = value.items.map((item) => String(scalarValue(item as YamlNode)));
    } else if (key === 'params') {
      if (!isMap(value)) fail('params: expected a mapping of name: default', line);
      else
        for (const p of value.items) {
          const name = String(scalarValue(p.key));
          const v = scalarValue(p.value as YamlNode);
          if (v === undefined || typeof v === 'object') fail(`params.${name}: expected a scalar default`, lineOf(p.key as YamlNode));
          else spec.params[name] = String(v);
        }
    }
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (name in spec.params) spec.params[name] = value;
    else fail(`--set ${name}: no such parameter; declared parameters are ${Object.keys(spec.params).join(', ') || 'none'}`, 1);
  }

  const nodesPair = root.items.find((p) => scalarValue(p.key) === 'nodes');
  const nodesMap = nodesPair?.value as YamlNode | undefined;
  if (!nodesPair || !isMap(nodesMap)) {
    fail('nodes: expected a mapping of node id to node definition', nodesPair ? lineOf(nodesPair.key as YamlNode) : 1);
    return { spec, problems };
  }
  const interpolate = (raw: unknown, line: number, onParam: () => void): unknown => {
    if (typeof raw === 'string') {
      return raw.replace(/\$\{([^}]*)\}/g, (match, name: string) => {
        if (!(name in spec.params)) {
          fail(`unknown parameter \${${name}}: declared parameters are ${Object.keys(spec.params).join(', ') || 'none'}`, line);
          return match;
        }
        if (cliParams.has(name)) onParam();
        return spec.params[name]!;
      });
    }
    if (Array.isArray(raw)) return raw.map((item) => interpolate(item, line, onParam));
    if (raw && typeof raw === 'object')
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v, line, onParam)]));
    return raw;
  };
  // The seed may be a `${param}`, so `--set seed=7` (or a TOML config) can change it like any option.
  if (seedEntry) {
    const raw = interpolate(seedEntry.value, seedEntry.line, () => {});
    const seed = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) fail(`seed: expected an integer, got ${JSON.stringify(raw)}`, seedEntry.line);
    else spec.seed = seed;
  }

  for (const pair of nodesMap.items as Pair<YamlNode, YamlNode>[]) {
    const id = String(scalarValue(pair.key));
    const line = lineOf(pair.key);
    const body = pair.value;
    if (!isMap(body)) {
      fail(`node '${id}': expected a mapping with 'use' and its options`, line);
      continue;
    }
    const node: NodeSpec = {
      id,
      use: '',
      line,
      from: [],
      namedFrom: false,
      options: {},
      optionLines: {},
      fromCommandLine: new Set(),
    };
    let enabled: { value: unknown; line: number } | undefined;
    for (const item of body.items as Pair<YamlNode, YamlNode>[]) {
      const key = String(scalarValue(item.key));
      const keyLine = lineOf(item.key);
      const value = item.value;
      if (key === 'use') node.use = String(scalarValue(value));
      else if (key === 'stage') node.stage = String(scalarValue(value));
      else if (key === 'description') continue;
      else if (key === 'enabled') enabled = { value: interpolate(value?.toJSON() ?? null, keyLine, () => {}), line: keyLine };
      else if (key === 'from') {
        if (isSeq(value)) {
          for (const entry of value.items as YamlNode[])
            node.from.push({ port: null, node: String(scalarValue(entry)), line: lineOf(entry) });
        } else if (isMap(value)) {
          node.namedFrom = true;
          for (const entry of value.items as Pair<YamlNode, YamlNode>[])
            node.from.push({ port: String(scalarValue(entry.key)), node: String(scalarValue(entry.value)), line: lineOf(entry.key) });
        } else if (isScalar(value)) {
          node.from.push({ port: null, node: String(value.value), line: keyLine });
        } else fail(`node '${id}': from: expected a node id, a list of ids or a map of port: id`, keyLine);
      } else {
        node.optionLines[key] = keyLine;
        node.options[key] = interpolate(value?.toJSON() ?? null, keyLine, () => node.fromCommandLine.add(key));
      }
    }
    if (enabled && enabled.value !== true && enabled.value !== 'true') {
      if (enabled.value === false || enabled.value === 'false') spec.disabled.push(id);
      else fail(`node '${id}': enabled: expected true or false, got ${JSON.stringify(enabled.value)}`, enabled.line);
      continue;
    }
    if (!node.use) fail(`node '${id}': missing 'use' (the node type)`, line);
    if (node.stage !== undefined && !spec.stages.includes(node.stage))
      fail(`node '${id}': stage '${node.stage}' is not listed under stages`, line);
    spec.nodes.push(node);
  }
  return { spec, problems };
}

function scalarValue(node: unknown): unknown {
  if (node === null || node === undefined) return undefined;
  if (isScalar(node)) return node.value;
  if (isMap(node) || isSeq(node)) return (node as YamlNode).toJSON();
  return node;
}

/** `name=value` pairs from `--set`, checked for shape. */
export function parseOverrides(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${pair}: expected name=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
