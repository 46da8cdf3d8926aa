import { mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { AnimindError, attributeToNode, ConfigError, DataError, writeFailure } from './errors.ts';
import { isStreamOrBlank, pathOptionMeta } from './options.ts';
import { lockFolder, type FolderLock } from './out-dir.ts';
import type { Batch, NodeContext, PipelineInfo, Stats, StatsHandle, StatsSchema, WrittenOutput } from './node.ts';
import type { Reporter } from './progress.ts';
import { countConsumers, collectInputs, fanOut } from './fan-out.ts';
import { KeyedRandom, nodeGenerator } from './random.ts';
import { trackStages, untilStopped } from './run-progress.ts';
import { _, type Stream } from './stream.ts';
import { planInputFiles, type Plan, type PlannedNode } from './validate.ts';

export interface RunOptions {
  reporter: Reporter;
  /** Aborting it stops the run (Ctrl-C, SIGTERM, a closed stdout); its reason becomes the error. */
  signal?: AbortSignal;
  /**
   * Aborting it asks for a graceful stop: `stoppable` nodes see `ctx.stopRequested` and end the run
   * themselves; in a run without one it stops the run like `signal`, its reason the error.
   */
  stopSignal?: AbortSignal;
  /** Settings the run was started with beyond the params (`animind run`'s TOML section), for the manifest. */
  config?: Readonly<Record<string, unknown>>;
}

export interface RunResult {
  stats: Record<string, Stats>;
  outputs: string[];
  seconds: number;
}

/**
 * Runs a validated plan: wires the nodes' highland streams (pull-based, so the slowest sink sets
 * the pace), stops everything on the first error, and publishes outputs only on success.
 */
export async function runPlan(plan: Plan, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const run = new Run(plan, options);
  try {
    run.start();
    await run.settled();
    await run.close();
    run.publish();
  } finally {
    run.unlockFolders();
  }
  return { stats: run.stats, outputs: run.outputs.map((o) => o.path), seconds: (Date.now() - started) / 1000 };
}

class Run {
  private readonly controller = new AbortController();
  private failure: AnimindError | undefined;
  readonly outputs: WrittenOutput[] = [];
  readonly stats: Record<string, Stats> = {};
  private readonly closers: { node: string; fn: () => void | Promise<void> }[] = [];
  private readonly createdDirs: string[] = [];
  /** The folders this run writes outputs into, each locked against other runs until it ends. */
  private readonly locks = new Map<string, FolderLock>();
  private readonly streams: Stream<unknown>[] = [];
  private readonly sinkPromises: Promise<void>[] = [];
  private readonly sinkDone = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private readonly outputsOf = new Map<string, () => Stream<Batch>>();
  private readonly stages: ReturnType<typeof trackStages>;
  private readonly pipeline: PipelineInfo;
  private readonly stopController = new AbortController();
  private readonly onStopRequest = () => {
    const reason = this.options.stopSignal!.reason;
    if (this.plan.nodes.some((node) => node.def.stoppable)) this.stopController.abort(reason);
    else this.abortWith(reason);
  };
  private readonly onOuterAbort = () => this.abortWith(this.options.signal!.reason);

  private abortWith(reason: unknown): void {
    if (this.failure) return;
    this.failure = reason instanceof AnimindError ? reason : attributeToNode(reason, 'pipeline');
    this.controller.abort(this.failure);
  }

  constructor(
    private readonly plan: Plan,
    private readonly options: RunOptions,
  ) {
    options.signal?.addEventListener('abort', this.onOuterAbort, { once: true });
    if (options.signal?.aborted) this.onOuterAbort();
    options.stopSignal?.addEventListener('abort', this.onStopRequest, { once: true });
    if (options.stopSignal?.aborted) this.onStopRequest();
    for (const node of plan.nodes) {
      this.stats[node.spec.id] = {};
      if (node.def.kind !== 'sink') continue;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.sinkDone.set(node.spec.id, { promise, resolve });
    }
    this.stages = trackStages(plan, options.reporter, this.controller.signal);
    const { name, seed, dir, batchSize, params } = plan.spec;
    this.pipeline = {
      name,
      seed,
      dir,
      batchSize,
      params,
      config: options.config ?? {},
      inputFiles: planInputFiles(plan),
    };
  }

  /** The first error fails the whole run; everything else that goes wrong after it is its consequence. */
  private fail(error: unknown, node: string): void {
    if (this.failure) return;
    const written = this.outputs.filter((output) => output.node === node).map((output) => output.path);
    this.failure = attributeToNode(writeFailure(error, written), node);
    this.controller.abort(this.failure);
  }

  start(): void {
    if (!this.lockOutputFolders()) return;
    const consumers = countConsumers(this.plan);
    for (const planned of this.plan.nodes) {
      const id = planned.spec.id;
      const ctx = this.context(planned);
      const inputs = collectInputs(planned, this.outputsOf, this.plan);
      try {
        if (planned.def.kind === 'sink') {
          this.sinkPromises.push(this.startSink(planned.def.create(ctx, inputs), id));
          continue;
        }
        const produced: Stream<Batch> =
          planned.def.kind === 'source' ? planned.def.create(ctx) : planned.def.create(ctx, inputs);
        const guarded = this.guard(produced, id);
        this.streams.push(produced as Stream<unknown>, guarded as Stream<unknown>);
        this.outputsOf.set(id, fanOut(guarded, consumers.get(id) ?? { count: 0, side: false }, this.streams));
      } catch (error) {
        this.fail(error, id);
        break;
      }
    }
  }

  private startSink(created: Promise<void>, id: string): Promise<void> {
    return created.then(
      () => {
        this.sinkDone.get(id)!.resolve();
        this.stages.done(id);
      },
      (error) => this.fail(error, id),
    );
  }

  /** Passes a node's batches on, failing the run on its first error and checking each batch is an array. */
  private guard(produced: Stream<Batch>, id: string): Stream<Batch> {
    return produced.consume<Batch>((error, batch, push, next) => {
      if (error) {
        // Ending this stream here stops pulling from upstream.
        this.fail(error, id);
        push(null, _.nil);
      } else if (_.isNil(batch)) {
        this.stages.done(id);
        push(null, batch);
      } else if (!Array.isArray(batch)) {
        // Blamed on the node that emitted it, not on the one downstream that cannot read it.
        this.fail(
          new DataError(`emitted a batch that is not an array of rows (got ${typeof batch}); a node passes on arrays`),
          id,
        );
        push(null, _.nil);
      } else {
        push(null, batch);
        next();
      }
    });
  }

  /** Resolves once every sink is done or the run has failed. */
  async settled(): Promise<void> {
    const aborted = new Promise<void>((resolve) =>
      this.controller.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    await Promise.race([Promise.all(this.sinkPromises), aborted]);
    this.options.signal?.removeEventListener('abort', this.onOuterAbort);
    this.options.stopSignal?.removeEventListener('abort', this.onStopRequest);
  }

  /** Stops what still runs after a failure, then runs every node's close hooks, last registered first. */
  async close(): Promise<void> {
    if (this.failure)
      for (const stream of this.streams) {
        try {
          stream.destroy();
        } catch {
          // A stream that is already finished may refuse to be destroyed; there is nothing left to stop.
        }
      }
    const closeErrors: AnimindError[] = [];
    for (const closer of this.closers.reverse()) {
      try {
        await closer.fn();
      } catch (error) {
        closeErrors.push(attributeToNode(error, closer.node));
      }
    }
    this.failure ??= closeErrors[0];
  }

  /**
   * Renames every output into place, or, after a failure, removes them and the folders the run
   * made, and throws. Either way the output folders are unlocked.
   */
  publish(): void {
    if (this.failure) {
      for (const output of this.outputs) rmSync(output.tmpPath, { force: true });
      // Before the folders it made go: the lock is what would keep them from being empty.
      this.unlockFolders();
      for (const dir of this.createdDirs.reverse()) {
        try {
          rmdirSync(dir);
        } catch {
          // Not empty: it held something before this run, so it stays.
        }
      }
      this.options.reporter.stop();
      throw this.failure;
    }
    for (const output of this.outputs) renameSync(output.tmpPath, output.path);
    this.unlockFolders();
    this.options.reporter.stop();
  }

  /** Releases every output folder's lock; runPlan calls it on every path, so a second call does nothing. */
  unlockFolders(): void {
    for (const lock of this.locks.values()) lock.release();
    this.locks.clear();
  }

  private context(planned: PlannedNode): NodeContext<never> {
    const id = planned.spec.id;
    const { seed } = this.plan.spec;
    const signal = this.controller.signal;
    let pendingSinks: Promise<readonly WrittenOutput[]> | undefined;
    return {
      id,
      options: planned.options as never,
      pipeline: this.pipeline,
      rng: (stream = '') => nodeGenerator(seed, id, stream),
      keyed: new KeyedRandom(seed, id),
      progress: untilStopped(this.options.reporter.forNode(id), signal),
      signal,
      stopRequested: this.stopController.signal,
      onClose: (fn) => this.closers.push({ node: id, fn }),
      stats: this.stats[id]!,
      statsOf: (other, schema) => statsHandle(this.stats, other, schema),
      output: (target) => this.registerOutput(id, target),
      reportOutput: (target, report) => {
        const output = this.outputs.find((o) => o.node === id && (o.path === target || o.tmpPath === target));
        if (!output) throw new Error(`reportOutput: ${target} was not registered by node '${id}' with ctx.output`);
        if (report.rows !== undefined) output.rows = report.rows;
        if (report.digest) output.digest = { bytes: report.digest.bytes, sha256: report.digest.sha256 };
      },
      otherSinksDone: () => (pendingSinks ??= this.otherSinks(id)),
    };
  }

  private registerOutput(node: string, target: string): string {
    const folder = path.dirname(target);
    const created = mkdirSync(folder, { recursive: true });
    if (created) this.createdDirs.push(created);
    this.lockFolder(folder, node);
    const tmpPath = path.join(folder, `.${path.basename(target)}.tmp-${process.pid}`);
    this.outputs.push({ node, path: target, tmpPath, rows: null, digest: null });
    return tmpPath;
  }

  /**
   * Locks the folder of every file the nodes declare they write before any node starts, so a run
   * refused because another writes there has read nothing and started nothing. False when refused.
   */
  private lockOutputFolders(): boolean {
    for (const [folder, node] of outputFolders(this.plan)) {
      try {
        const created = mkdirSync(folder, { recursive: true });
        if (created) this.createdDirs.push(created);
        this.lockFolder(folder, node);
      } catch (error) {
        this.fail(error, node);
        return false;
      }
    }
    return true;
  }

  /**
   * Takes the folder's lock on the run's first output there (refused while another run writes
   * into it), and says what runs killed there had left, which taking it removes. A node's output
   * that no option declared is locked when the node asks for it.
   */
  private lockFolder(folder: string, node: string): void {
    const key = path.resolve(folder);
    if (this.locks.has(key)) return;
    const lock = lockFolder(key);
    this.locks.set(key, lock);
    if (lock.notice) this.options.reporter.forNode(node).log(lock.notice);
  }

  private otherSinks(self: string): Promise<readonly WrittenOutput[]> {
    const others = [...this.sinkDone].filter(([id]) => id !== self).map(([, d]) => d.promise);
    const signal = this.controller.signal;
    const aborted = new Promise<never>((_resolve, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    return Promise.race([Promise.all(others).then(() => this.outputs.filter((o) => o.node !== self)), aborted]);
  }
}

/** The folder of every file the plan's nodes declare they write, each with the first node that writes there. */
function outputFolders(plan: Plan): Map<string, string> {
  const folders = new Map<string, string>();
  for (const { spec, def, options } of plan.nodes) {
    const files: unknown[] = [];
    for (const [option, { role, target }] of pathOptionMeta(def.options))
      if (role === 'output' && target === 'file') files.push(options[option]);
    for (const ref of def.files?.(options as never) ?? []) if (ref.role === 'output') files.push(ref.path);
    for (const file of files) {
      if (typeof file !== 'string' || isStreamOrBlank(file)) continue;
      const folder = path.dirname(path.resolve(file));
      if (!folders.has(folder)) folders.set(folder, spec.id);
    }
  }
  return folders;
}

/** A typed view of another node's stats, checked when read. */
function statsHandle<S extends StatsSchema>(
  stats: Readonly<Record<string, Stats>>,
  id: string,
  schema: S,
): StatsHandle<z.output<S>> {
  if (!stats[id]) throw new ConfigError(`no node '${id}' in this pipeline to read stats from`);
  return {
    read() {
      const parsed = schema.safeParse(stats[id]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new DataError(`node '${id}': stat '${issue.path.join('.')}' is not what was expected: ${issue.message}`);
      }
      return parsed.data;
    },
  };
}
