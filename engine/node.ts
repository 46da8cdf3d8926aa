import { z } from 'zod';
import type { Stream } from './stream.ts';
import type { KeyedRandom } from './random.ts';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import type { Progress } from './progress.ts';
import type { Columns } from './columns.ts';
import type { ParamValue } from './params.ts';

/** Rows travel between nodes in arrays so per-stage overhead is paid per batch, not per row. */
export type Batch<T = unknown> = T[];

export type NodeKind = 'source' | 'transform' | 'sink';

/**
 * An input port. `T` is the row type the node expects there (the graph connects ports by name,
 * so it is the node's declaration, not something checked row by row). A `side` port is a small
 * table: the runtime materialises its producer once and replays it, so a node can look rows up
 * while it streams its main input.
 */
export interface Port<T = unknown> {
  readonly side: boolean;
  /** Never set: carries the row type. */
  readonly rows?: T;
}

export const port = <T = unknown>(options: { side?: boolean } = {}): Port<T> => ({ side: options.side ?? false });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a port of any row type
export type Ports = Readonly<Record<string, Port<any>>>;

export type RowsOf<P> = P extends Port<infer T> ? T : never;

/** The streams a node receives, by port name, each typed by its port. */
export type PortStreams<P extends Ports> = { readonly [K in keyof P]: Stream<Batch<RowsOf<P[K]>>> };

export interface Inputs<P extends Ports> {
  readonly ports: PortStreams<P>;
  /** Every input in `from` order, all on the first port: what a variadic node reads. */
  readonly list: readonly Stream<Batch<RowsOf<P[keyof P]>>>[];
  /** The column layout each port's producer declares for its rows, where it declares one. */
  readonly columns: { readonly [K in keyof P]?: Columns };
}

/** A file a node reads or writes, declared up front so validation can check it before any data flows. */
export interface FileRef {
  /** The option key that named the file, used to point errors at the right YAML line. */
  option: string;
  path: string;
  role: 'input' | 'output';
}

/** The counters a node reports, declared as a zod object so other nodes can read them typed. */
export type StatsSchema = z.ZodObject;

/** A node's stats while it runs: each counter is set as it becomes known. */
export type StatsOf<St extends StatsSchema> = Partial<z.output<St>>;

/** Stats of any node, as the run result reports them. */
export type Stats = Record<string, unknown>;

/** Another node's stats, read once that node has finished (the summary sink reads pool sizes this way). */
export interface StatsHandle<T> {
  /** The stats, checked against the schema; a DataError names the node and the missing counter. */
  read(): T;
}

/** A file a sink wrote, as the sinks that run after the others see it. */
export interface WrittenOutput {
  node: string;
  /** Where the file will be once the run succeeds. */
  path: string;
  /** Where its bytes are until then. */
  tmpPath: string;
  /** What the sink reported through `ctx.reportOutput`. */
  rows: number | null;
  digest: { bytes: number; sha256: string } | null;
}

/** What a run was started from; the manifest records it. */
export interface PipelineInfo {
  readonly name: string;
  readonly seed: number;
  readonly dir: string;
  /** Rows per batch the sources hand on (an engine setting: any value gives the same bytes). */
  readonly batchSize: number;
  /** Every parameter after `--set` and config overrides, typed by its declaration. */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** Settings the run was started with beyond the params, such as `animind run`'s TOML section. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Every file the pipeline's nodes read, with the `node.option` names that point at it. */
  readonly inputFiles: ReadonlyArray<{ path: string; usedBy: string[] }>;
}

export interface NodeContext<O, St extends StatsSchema = StatsSchema> {
  readonly id: string;
  readonly options: O;
  readonly pipeline: PipelineInfo;
  /** Random stream unique to (pipeline seed, node id): use only where arrival order is fixed. */
  rng(stream?: string): RandomGenerator;
  /** Random values keyed by a record's key: independent of order, batching and workers. */
  readonly keyed: KeyedRandom;
  readonly progress: Progress;
  readonly signal: AbortSignal;
  /**
   * Fires when a graceful stop is asked (SIGTERM, SIGUSR1: what cluster schedulers send before a
   * kill), only for a node declared `stoppable`: it finishes the unit of work in hand, saves what a
   * later run resumes from, and ends the run with a PreemptedError. `signal` still aborts at once.
   */
  readonly stopRequested: AbortSignal;
  /** Runs on success, failure and interruption alike; the place to close statements, files and processes. */
  onClose(fn: () => void | Promise<void>): void;
  /** This node's counters, as declared in its `stats` schema. */
  readonly stats: StatsOf<St>;
  /** The stats of node `id`, read through `schema` (usually that node type's own `stats`). */
  statsOf<S extends StatsSchema>(id: string, schema: S): StatsHandle<z.output<S>>;
  /**
   * Registers a final output path: returns a temporary path to write
   * to; the runtime renames it on success and removes it otherwise.
   */
  output(path: string): string;
  /** Tells the sinks that run after the others what went into an output registered with `output`. */
  reportOutput(path: string, report: { rows?: number; digest?: { bytes: number; sha256: string } }): void;
  /**
   * Resolves once every other sink has finished, with what each wrote: for a sink declared with
   * `after: 'other-sinks'`, such as the manifest. Rejects with the run's error if it fails.
   */
  otherSinksDone(): Promise<readonly WrittenOutput[]>;
}

export interface OptionProblem {
  option: string;
  message: string;
}

interface BaseNode<S extends z.ZodType, St extends StatsSchema> {
  readonly type: string;
  readonly kind: NodeKind;
  readonly description: string;
  readonly options: S;
  readonly stats?: St;
  /** Files the node will read or write, so validation can check them before the run. */
  files?(options: z.output<S>): FileRef[];
  /**
   * Checks that need the outside world but read no data (a database's schema, say); each
   * problem names the option it concerns so validation can point at its YAML line.
   */
  check?(options: z.output<S>): Promise<OptionProblem[]> | OptionProblem[];
  /**
   * The node reacts to `ctx.stopRequested` (see there). A run with no such node stops at once on
   * a graceful stop request, as on Ctrl-C.
   */
  readonly stoppable?: boolean;
}

/** `R` is the row type the node emits; `columns`, optionally, its layout for columnar sinks. */
export interface SourceNode<
  S extends z.ZodType = z.ZodType,
  St extends StatsSchema = StatsSchema,
  R = unknown,
> extends BaseNode<S, St> {
  readonly kind: 'source';
  readonly columns?: Columns;
  create(ctx: NodeContext<z.output<S>, St>): Stream<Batch<R>>;
}

export interface TransformNode<
  S extends z.ZodType = z.ZodType,
  P extends Ports = Ports,
  St extends StatsSchema = StatsSchema,
  R = unknown,
> extends BaseNode<S, St> {
  readonly kind: 'transform';
  readonly columns?: Columns;
  readonly inputs: P;
  /** Takes any number (at least one) of inputs on its first port. */
  readonly variadic?: boolean;
  create(ctx: NodeContext<z.output<S>, St>, inputs: Inputs<P>): Stream<Batch<R>>;
}

export interface SinkNode<
  S extends z.ZodType = z.ZodType,
  P extends Ports = Ports,
  St extends StatsSchema = StatsSchema,
> extends BaseNode<S, St> {
  readonly kind: 'sink';
  readonly inputs: P;
  readonly variadic?: boolean;
  /** Resolves once everything is written; rejecting fails the run. */
  create(ctx: NodeContext<z.output<S>, St>, inputs: Inputs<P>): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a node of any options, ports and stats
export type NodeDefinition = SourceNode<any, any, any> | TransformNode<any, any, any, any> | SinkNode<any, any, any>;

/** No counters: the default `stats` of a node that declares none. */
export const noStats = z.object({});

export function defineSource<S extends z.ZodType, R, St extends StatsSchema = typeof noStats>(
  def: SourceNode<S, St, R>,
): SourceNode<S, St, R> {
  return def;
}
export function defineTransform<S extends z.ZodType, P extends Ports, R, St extends StatsSchema = typeof noStats>(
  def: TransformNode<S, P, St, R>,
): TransformNode<S, P, St, R> {
  return def;
}
export function defineSink<S extends z.ZodType, P extends Ports, St extends StatsSchema = typeof noStats>(
  def: SinkNode<S, P, St>,
): SinkNode<S, P, St> {
  return def;
}

/** The counter most sources and sinks report: rows read or written. */
export const rowStats = z.object({ rows: z.number().describe('rows read or written') });
