import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError, DataError, ValidationError } from './errors.ts';
import type { NodeDefinition, Ports } from './node.ts';
import { isStreamOrBlank, pathOptionMeta, pathOptions, resolvePaths, type PathMeta } from './options.ts';
import { readPipelineFile, type NodeSpec, type PipelineSpec } from './pipeline-file.ts';
import type { ParamOverride } from './params.ts';
import type { NodeRegistry } from './registry.ts';
import { findCycle, topologicalOrder } from './graph.ts';

export interface PlannedInput {
  port: string;
  node: string;
}

export interface PlannedNode {
  spec: NodeSpec;
  def: NodeDefinition;
  options: Record<string, unknown>;
  inputs: PlannedInput[];
}

export interface Plan {
  spec: PipelineSpec;
  /** In an order where every node comes after its inputs. */
  nodes: PlannedNode[];
}

/** A file or folder one option of one node names, resolved; the same path in two roles is a problem. */
interface PathUse extends PathMeta {
  node: string;
  option: string;
  line: number;
  path: string;
}

export interface LoadOptions {
  /** The node types `use:` may name besides user modules. */
  registry: NodeRegistry;
  /** Parameter values from `--set` (text) or a config file (typed, with their location). */
  overrides?: Readonly<Record<string, ParamOverride>>;
  /** Rows per batch, instead of the file's `batch_size`. */
  batchSize?: number;
}

/** The ports a node declares, in declaration order (the order a `from` list fills them). */
export const portNames = (def: NodeDefinition): string[] => (def.kind === 'source' ? [] : Object.keys(def.inputs));

/** Its side ports: small tables replayed to the node. */
export const sidePorts = (def: NodeDefinition): string[] =>
  def.kind === 'source'
    ? []
    : Object.entries(def.inputs as Ports)
        .filter(([, port]) => port.side)
        .map(([name]) => name);

/**
 * Reads and checks a pipeline without touching any data. Every problem found is collected and
 * thrown together as a ValidationError, each with its YAML line.
 */
export async function loadPlan(file: string, { registry, overrides, batchSize }: LoadOptions): Promise<Plan> {
  const { spec, problems } = readPipelineFile(file, { overrides, batchSize });
  // A problem on the line of an option whose value a config file set is reported at that file's key.
  const sources = new Map(
    spec.nodes.flatMap((n) => Object.entries(n.optionSources).map(([k, at]) => [n.optionLines[k], at])),
  );
  const at = (line: number, message: string, node?: string) =>
    problems.push(new ConfigError(message, sources.get(line) ?? { file: spec.file, line, ...(node ? { node } : {}) }));

  const ids = new Set(spec.nodes.map((n) => n.id));
  const planned: PlannedNode[] = [];
  // A missing file or an unwritable folder named by several nodes (one database, one out_dir) is one problem.
  const reported = new Set<string>();
  const once = (cause: string) => !reported.has(cause) && Boolean(reported.add(cause));
  const paths: PathUse[] = [];
  // A locked database: a transient condition (exit 1), reported when the pipeline itself is sound.
  const transient: DataError[] = [];
  for (const node of spec.nodes) {
    if (!node.use) continue;
    const def = await registry.resolve(node.use, spec.dir);
    if (typeof def === 'string') {
      at(node.line, `node '${node.id}': ${def}`);
      continue;
    }
    const before = problems.length;
    const options = checkOptions(node, def, spec, { at, once, paths });
    const inputs = checkInputs(node, def, ids, spec.disabled, at);
    if (options && inputs) {
      const entry = { spec: node, def, options, inputs };
      if (problems.length === before) await runChecks(entry, spec.file, at, transient);
      planned.push(entry);
    }
  }
  checkSharedPaths(paths, at);

  const consumers = new Map<string, number>();
  for (const node of spec.nodes)
    for (const edge of node.from) consumers.set(edge.node, (consumers.get(edge.node) ?? 0) + 1);
  for (const node of planned)
    if (node.def.kind !== 'sink' && !consumers.has(node.spec.id))
      at(node.spec.line, `node '${node.spec.id}': its output is not used by any node (a pipeline ends in sinks)`);
  if (!planned.some((n) => n.def.kind === 'sink') && problems.length === 0)
    at(1, 'the pipeline has no sink: nothing would be written');

  const edges = new Map(spec.nodes.map((n) => [n.id, n.from.map((e) => e.node).filter((id) => ids.has(id))]));
  const cycle = findCycle(edges);
  if (cycle) {
    const first = spec.nodes.find((n) => n.id === cycle[0]);
    at(first?.line ?? 1, `cycle between nodes: ${cycle.join(' -> ')}`);
  }
  problems.sort((a, b) => (a.location.line ?? 0) - (b.location.line ?? 0));
  if (problems.length) throw problems.length === 1 ? problems[0]! : new ValidationError(problems);
  if (transient.length) throw transient[0]!;

  const order = topologicalOrder(edges);
  const byId = new Map(planned.map((n) => [n.spec.id, n]));
  return { spec, nodes: order.map((id) => byId.get(id)!) };
}

/** Where checkOptions reports: problems, problems reported once per cause, and every path it met. */
interface Report {
  at: (line: number, message: string, node?: string) => void;
  once: (cause: string) => boolean;
  paths: PathUse[];
}

function checkOptions(
  node: NodeSpec,
  def: NodeDefinition,
  spec: PipelineSpec,
  { at, once, paths }: Report,
): Record<string, unknown> | undefined {
  const schema = def.options as z.ZodType;
  const parsed = schema.safeParse(node.options);
  const raw = resolvePaths(
    schema,
    parsed.success ? (parsed.data as Record<string, unknown>) : node.options,
    spec.dir,
    node.fromCommandLine,
  );
  const pathsOk = checkPaths(node, schema, raw, at, once);
  const use = (option: string, value: unknown, meta: PathMeta) => {
    if (typeof value !== 'string' || isStreamOrBlank(value)) return;
    if (paths.some((p) => p.node === node.id && p.option === option && p.role === meta.role)) return;
    paths.push({ node: node.id, option, line: node.optionLines[option] ?? node.line, path: value, ...meta });
  };
  for (const [key, meta] of pathOptionMeta(schema)) use(key, raw[key], meta);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [String(issue.path[0] ?? '')];
      for (const key of keys) {
        const line = node.optionLines[key] ?? node.line;
        const where = issue.path.length ? issue.path.join('.') : key;
        const message =
          issue.code === 'unrecognized_keys'
            ? `unknown option '${key}' for ${def.type}; its options are ${Object.keys(
                (schema as unknown as { shape?: object }).shape ?? {},
              ).join(', ')}`
            : `option '${where}': ${issue.message}`;
        at(line, `node '${node.id}': ${message}`);
      }
    }
    return undefined;
  }
  const options = raw;
  if (def.files)
    for (const ref of def.files(options)) {
      use(ref.option, ref.path, { role: ref.role, target: 'file' });
      if (ref.role === 'input' && ref.path !== '-' && !existsSync(ref.path))
        at(
          node.optionLines[ref.option] ?? node.line,
          `node '${node.id}': option '${ref.option}': file ${ref.path} does not exist`,
        );
    }
  // Not planned, so its own checks (a database's schema, say) do not pile onto a path already reported.
  return pathsOk ? options : undefined;
}

/**
 * A node's own checks. A DataError thrown by one (a database locked by another process) is kept
 * in `transient`, located at the option its `key` names.
 */
async function runChecks(
  planned: PlannedNode,
  file: string,
  at: (line: number, message: string) => void,
  transient: DataError[],
): Promise<void> {
  if (!planned.def.check) return;
  const { id, optionLines, line } = planned.spec;
  try {
    const found = await planned.def.check(planned.options as never);
    for (const problem of found) at(optionLines[problem.option] ?? line, `node '${id}': ${problem.message}`);
  } catch (error) {
    if (!(error instanceof DataError)) throw error;
    const { key } = error.location;
    const where = key ? { line: optionLines[key] ?? line, text: `option '${key}': ` } : { line, text: '' };
    transient.push(new DataError(`node '${id}': ${where.text}${error.message}`, { file, line: where.line }));
  }
}

/**
 * Input files must exist and be files, outputs must be writable and an output file no folder,
 * checked even when other options are wrong; false on any problem.
 */
function checkPaths(
  node: NodeSpec,
  schema: z.ZodType,
  options: Record<string, unknown>,
  at: (line: number, message: string, node?: string) => void,
  once: (cause: string) => boolean,
): boolean {
  let ok = true;
  for (const [key, { role, target }] of pathOptionMeta(schema)) {
    const value = options[key];
    if (typeof value !== 'string' || isStreamOrBlank(value)) continue;
    const line = node.optionLines[key] ?? node.line;
    const fail = (cause: string, message: string) => {
      ok = false;
      if (once(cause)) at(line, `node '${node.id}': option '${key}': ${message}`);
    };
    if (role === 'input' && !existsSync(value)) fail(`missing ${value}`, `file ${value} does not exist`);
    else if (role === 'input' && statSync(value).isDirectory())
      fail(`folder ${value}`, `${value} is a folder, expected a file`);
    else if (role === 'output' && target === 'file' && existsSync(value) && statSync(value).isDirectory())
      fail(`folder ${value}`, `${value} is a folder, expected a file path`);
    else if (role === 'output') {
      const problem = unwritable(value);
      if (problem) fail(problem, `cannot write ${value}: ${problem}`);
    }
  }
  return ok;
}

/**
 * The file a path names, through symlinks; one not there yet by its nearest existing folder,
 * resolved, and the rest of the path.
 */
function realPath(target: string): string {
  const rest: string[] = [];
  for (let dir = target; ; dir = path.dirname(dir)) {
    try {
      return path.join(realpathSync(dir), ...rest.reverse());
    } catch {
      if (path.dirname(dir) === dir) return target;
      rest.push(path.basename(dir));
    }
  }
}

const describeUse = (use: PathUse) => `node '${use.node}' (option '${use.option}', line ${use.line})`;

/**
 * No output may overwrite an input of the same run, and no two outputs may share a path: the
 * first to finish would be replaced by the second, or its rename would fail after the run.
 */
function checkSharedPaths(uses: readonly PathUse[], at: (line: number, message: string) => void): void {
  const resolved = uses.map((use) => ({ use, real: realPath(use.path) }));
  const readers = new Map<string, PathUse[]>();
  for (const { use, real } of resolved)
    if (use.role === 'input' && existsSync(use.path)) readers.set(real, [...(readers.get(real) ?? []), use]);
  const writers = new Map<string, PathUse>();
  for (const { use, real } of resolved) {
    if (use.role !== 'output') continue;
    const where = `node '${use.node}': option '${use.option}': ${use.path}`;
    const read = readers.get(real);
    if (read)
      at(
        use.line,
        `${where} is also an input of this run, read by ${read.map(describeUse).join(' and ')}; ` +
          'an output must not overwrite an input',
      );
    const first = writers.get(real);
    if (first) at(use.line, `${where} is also written by ${describeUse(first)}; two outputs cannot share a path`);
    else writers.set(real, use);
  }
}

/** Why a path cannot be written, judged by its nearest existing ancestor; undefined when it can. */
function unwritable(target: string): string | undefined {
  let dir = path.dirname(target);
  while (!existsSync(dir)) {
    const parent = path.dirname(dir);
    if (parent === dir) return 'no existing parent folder';
    dir = parent;
  }
  if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return `folder ${dir} is not writable`;
  }
  return undefined;
}

function checkInputs(
  node: NodeSpec,
  def: NodeDefinition,
  ids: Set<string>,
  disabled: readonly string[],
  at: (line: number, message: string, node?: string) => void,
): PlannedInput[] | undefined {
  let ok = true;
  const fail = (line: number, message: string) => {
    ok = false;
    at(line, `node '${node.id}': ${message}`);
  };
  for (const edge of node.from)
    if (!ids.has(edge.node))
      fail(
        edge.line,
        disabled.includes(edge.node)
          ? `input '${edge.node}' is switched off (enabled: false)`
          : `input '${edge.node}' is not a node in this pipeline`,
      );
  if (def.kind === 'source') {
    if (node.from.length) fail(node.from[0]!.line, `${def.type} is a source and takes no 'from'`);
    return ok ? [] : undefined;
  }
  const ports = portNames(def);
  const { variadic } = def;
  if (node.from.length === 0) {
    fail(node.line, `missing 'from': ${def.type} needs input${ports.length > 1 ? 's' : ''} ${ports.join(', ')}`);
    return undefined;
  }
  const inputs: PlannedInput[] = [];
  if (variadic) {
    for (const edge of node.from) {
      if (edge.port !== null && edge.port !== ports[0])
        fail(edge.line, `unknown input port '${edge.port}' (expected '${ports[0]}')`);
      inputs.push({ port: ports[0]!, node: edge.node });
    }
  } else if (!node.namedFrom) {
    if (node.from.length !== ports.length)
      fail(
        node.from[0]!.line,
        `expected ${ports.length} input${ports.length > 1 ? 's' : ''} (${ports.join(', ')}), got ${node.from.length}`,
      );
    node.from.forEach((edge, i) => ports[i] !== undefined && inputs.push({ port: ports[i]!, node: edge.node }));
  } else {
    for (const edge of node.from) {
      if (!ports.includes(edge.port!))
        fail(edge.line, `unknown input port '${edge.port}' (expected ${ports.join(', ')})`);
      else inputs.push({ port: edge.port!, node: edge.node });
    }
    for (const port of ports)
      if (!node.from.some((e) => e.port === port)) fail(node.line, `missing input for port '${port}'`);
  }
  return ok ? inputs : undefined;
}

/**
 * Every file the plan's nodes read (input path options and declared
 * input files), with the `node.option` names that point at it.
 */
export function planInputFiles(plan: Plan): { path: string; usedBy: string[] }[] {
  const files = new Map<string, string[]>();
  const add = (file: unknown, use: string) => {
    if (typeof file !== 'string' || isStreamOrBlank(file)) return;
    files.set(file, [...(files.get(file) ?? []), use]);
  };
  for (const { spec, def, options } of plan.nodes) {
    for (const [option, role] of pathOptions(def.options))
      if (role === 'input') add(options[option], `${spec.id}.${option}`);
    for (const ref of def.files?.(options as never) ?? [])
      if (ref.role === 'input') add(ref.path, `${spec.id}.${ref.option}`);
  }
  return [...files].map(([path, usedBy]) => ({ path, usedBy }));
}
