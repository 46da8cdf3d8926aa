import type { z } from 'zod';
import type { Stream } from './stream.ts';
import type { KeyedRandom } from './random.ts';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import type { Progress } from './progress.ts';

/**
 * Rows travel between nodes in arrays so per-stage overhead is paid per batch, not per row.
 * The default row type is `any` because highland's Stream type is invariant: nodes state their
 * own row types and the graph connects them by name, checked at run time.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Batch<T = any> = T[];

export type NodeKind = 'source' | 'transform' | 'sink';

/** A file a node reads or writes, declared up front so validation can check it before any data flows. */
export interface FileRef {
  /** The option key that named the file, used to point errors at the right YAML line. */
  option: string;
  path: string;
  role: 'input' | 'output';
}

/** Counters a node reports; the summary sink and progress display read them. */
export type Stats = Record<string, unknown>;

export interface NodeContext<O> {
  readonly id: string;
  readonly options: O;
  readonly pipeline: { readonly name: string; readonly seed: number; readonly dir: string };
  /** Random stream unique to (pipeline seed, node id): use only where arrival order is fixed. */
  rng(stream?: string): RandomGenerator;
  /** Random values keyed by a record's key: independent of order, batching and workers. */
  readonly keyed: KeyedRandom;
  readonly progress: Progress;
  readonly signal: AbortSignal;
  /** Runs on success, failure and interruption alike; the place to close statements, files and processes. */
  onClose(fn: () => void | Promise<void>): void;
  /** Counters merged into the run's stats under this node's id. */
  readonly stats: Stats;
  /** Stats of every node so far, keyed by node id (sinks such as the summary read them at the end). */
  readonly allStats: Readonly<Record<string, Stats>>;
  /** Registers a final output path: returns a temporary path to write to; the runtime renames it on success and removes it otherwise. */
  output(path: string): string;
  /** Final output paths registered so far, with the node that owns each. */
  readonly outputs: ReadonlyArray<{ node: string; path: string }>;
}

interface BaseNode<S extends z.ZodType> {
  readonly type: string;
  readonly kind: NodeKind;
  readonly description: string;
  readonly options: S;
  /** Files the node will read or write, so validation can check them before the run. */
  files?(options: z.output<S>): FileRef[];
  /**
   * Checks that need the outside world but read no data (a database's schema, say); each
   * problem names the option it concerns so validation can point at its YAML line.
   */
  check?(options: z.output<S>): Promise<OptionProblem[]> | OptionProblem[];
}

export interface OptionProblem {
  option: string;
  message: string;
}

export interface SourceNode<S extends z.ZodType = z.ZodType> extends BaseNode<S> {
  readonly kind: 'source';
  create(ctx: NodeContext<z.output<S>>): Stream<Batch>;
}

/**
 * Named input ports. `variadic` takes any number (at least one) of inputs on the first port.
 * `side` ports are small tables: the runtime materializes their producer once and replays it,
 * so a node can look them up while it streams its main input.
 */
export interface InputSpec {
  readonly ports: readonly string[];
  readonly variadic?: boolean;
  readonly side?: readonly string[];
}

export interface TransformNode<S extends z.ZodType = z.ZodType> extends BaseNode<S> {
  readonly kind: 'transform';
  readonly inputs: InputSpec;
  create(ctx: NodeContext<z.output<S>>, inputs: Inputs): Stream<Batch>;
}

export interface SinkNode<S extends z.ZodType = z.ZodType> extends BaseNode<S> {
  readonly kind: 'sink';
  readonly inputs: InputSpec;
  /** Resolves once everything is written; rejecting fails the run. */
  create(ctx: NodeContext<z.output<S>>, inputs: Inputs): Promise<void>;
}

/** Input streams by port name; a variadic node reads `list` instead (streams in `from` order). */
export interface Inputs {
  readonly ports: Readonly<Record<string, Stream<Batch>>>;
  readonly list: readonly Stream<Batch>[];
}

export type NodeDefinition = SourceNode | TransformNode | SinkNode;

export function defineSource<S extends z.ZodType>(def: SourceNode<S>): SourceNode<S> {
  return def;
}
export function defineTransform<S extends z.ZodType>(def: TransformNode<S>): TransformNode<S> {
  return def;
}
export function defineSink<S extends z.ZodType>(def: SinkNode<S>): SinkNode<S> {
  return def;
}
