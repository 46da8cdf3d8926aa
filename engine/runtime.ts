import { mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AnimindError, attributeToNode, writeFailure } from './errors.ts';
import type { Batch, Inputs, NodeContext, Stats } from './node.ts';
import type { Progress, Reporter } from './progress.ts';
import { KeyedRandom, nodeGenerator } from './random.ts';
import { _, type Stream } from './stream.ts';
import type { Plan, PlannedNode } from './validate.ts';

export interface RunOptions {
  reporter: Reporter;
  /** Aborting it stops the run (Ctrl-C, SIGTERM, a closed stdout); its reason becomes the error. */
  signal?: AbortSignal;
}

export interface OutputFile {
  node: string;
  path: string;
  /** Where the data sits until the run succeeds and it is renamed to `path`. */
  tmpPath: string;
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
  const controller = new AbortController();
  let failure: AnimindError | undefined;
  const outputs: OutputFile[] = [];
  const fail = (error: unknown, node: string) => {
    if (failure) return;
    const written = outputs.filter((output) => output.node === node).map((output) => output.path);
    failure = attributeToNode(writeFailure(error, written), node);
    controller.abort(failure);
  };
  const onOuterAbort = () => {
    if (!failure) {
      const reason = options.signal!.reason;
      failure = reason instanceof AnimindError ? reason : attributeToNode(reason, 'pipeline');
      controller.abort(failure);
    }
  };
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();

  const closers: { node: string; fn: () => void | Promise<void> }[] = [];
  const createdDirs: string[] = [];
  const stats: Record<string, Stats> = {};
  const streams: Stream<unknown>[] = [];
  const sinkPromises: Promise<void>[] = [];
  const sinkDone = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  for (const node of plan.nodes)
    if (node.def.kind === 'sink') {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      sinkDone.set(node.spec.id, { promise, resolve });
    }

  const stageTracker = trackStages(plan, options.reporter, controller.signal);
  const consumers = countConsumers(plan);
  const outputsOf = new Map<string, () => Stream<Batch>>();

  for (const planned of plan.nodes) {
    const id = planned.spec.id;
    stats[id] = {};
    const ctx = makeContext(planned, plan, {
      signal: controller.signal,
      reporter: options.reporter,
      stats,
      outputs,
      createdDirs,
      closers,
      sinkDone,
    });
    const inputs = collectInputs(planned, outputsOf);
    try {
      if (planned.def.kind === 'sink') {
        const promise = Promise.resolve()
          .then(() => planned.def.create(ctx as never, inputs) as Promise<void>)
          .then(
            () => {
              sinkDone.get(id)!.resolve();
              stageTracker.done(id);
            },
            (error) => fail(error, id),
          );
        sinkPromises.push(promise);
        continue;
      }
      const produced =
        planned.def.kind === 'source'
          ? (planned.def.create(ctx as never) as Stream<Batch>)
          : (planned.def.create(ctx as never, inputs) as Stream<Batch>);
      const guarded = produced.consume<Batch>((error, batch, push, next) => {
        if (error) {
          // The first error fails the whole run; ending this stream here stops pulling from upstream.
          fail(error, id);
          push(null, _.nil);
        } else if (_.isNil(batch)) {
          stageTracker.done(id);
          push(null, batch);
        } else {
          push(null, batch);
          next();
        }
      });
      streams.push(produced as Stream<unknown>, guarded as Stream<unknown>);
      outputsOf.set(id, fanOut(guarded, consumers.get(id) ?? { count: 0, side: false }, streams));
    } catch (error) {
      fail(error, id);
      break;
    }
  }

  const aborted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  await Promise.race([Promise.all(sinkPromises), aborted]);
  options.signal?.removeEventListener('abort', onOuterAbort);

  if (failure) {
    for (const stream of streams) {
      try {
        stream.destroy();
      } catch {
        // A stream that is already finished may refuse to be destroyed; there is nothing left to stop.
      }
    }
  }
  const closeErrors: unknown[] = [];
  for (const closer of closers.reverse()) {
    try {
      await closer.fn();
    } catch (error) {
      closeErrors.push(attributeToNode(error, closer.node));
    }
  }
  if (!failure && closeErrors.length) failure = closeErrors[0] as AnimindError;
  if (failure) {
    for (const output of outputs) rmSync(output.tmpPath, { force: true });
    for (const dir of createdDirs.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // Not empty: it held something before this run, so it stays.
      }
    }
    options.reporter.stop();
    throw failure;
  }
  for (const output of outputs) renameSync(output.tmpPath, output.path);
  options.reporter.stop();
  return { stats, outputs: outputs.map((o) => o.path), seconds: (Date.now() - started) / 1000 };
}

interface ContextDeps {
  signal: AbortSignal;
  reporter: Reporter;
  stats: Record<string, Stats>;
  outputs: OutputFile[];
  createdDirs: string[];
  closers: { node: string; fn: () => void | Promise<void> }[];
  sinkDone: ReadonlyMap<string, { promise: Promise<void> }>;
}

export interface RuntimeContext<O> extends NodeContext<O> {
  /** Resolves once every sink other than the caller has finished; the manifest waits on it. */
  otherSinksDone(): Promise<void>;
  readonly outputFiles: readonly OutputFile[];
  /** The whole validated plan: the manifest records its params and fingerprints every node's input files. */
  readonly plan: Plan;
}

function makeContext(planned: PlannedNode, plan: Plan, deps: ContextDeps): RuntimeContext<unknown> {
  const id = planned.spec.id;
  const { seed, name, dir } = plan.spec;
  let pendingSinks: Promise<void> | undefined;
  return {
    id,
    options: planned.options,
    pipeline: { name, seed, dir },
    rng: (stream = '') => nodeGenerator(seed, id, stream),
    keyed: new KeyedRandom(seed, id),
    progress: untilStopped(deps.reporter.forNode(id), deps.signal),
    signal: deps.signal,
    onClose: (fn) => deps.closers.push({ node: id, fn }),
    stats: deps.stats[id]!,
    allStats: deps.stats,
    output(target: string) {
      const folder = path.dirname(target);
      const created = mkdirSync(folder, { recursive: true });
      if (created) deps.createdDirs.push(created);
      const tmpPath = path.join(folder, `.${path.basename(target)}.tmp-${process.pid}`);
      deps.outputs.push({ node: id, path: target, tmpPath });
      return tmpPath;
    },
    get outputs() {
      return deps.outputs.map((o) => ({ node: o.node, path: o.path }));
    },
    outputFiles: deps.outputs,
    plan,
    otherSinksDone() {
      pendingSinks ??= otherSinks(id, deps);
      return pendingSinks;
    },
  };
}

/**
 * A node's log lines until the run stops: after a failure or an interrupt, nodes that see their
 * input end early would report what they hold (an empty pool, a short count) as if it were the
 * result, beside the one error line that is.
 */
function untilStopped(progress: Progress, signal: AbortSignal): Progress {
  return {
    log(message) {
      if (!signal.aborted) progress.log(message);
    },
    warn(message) {
      if (!signal.aborted) progress.warn(message);
    },
    counter: (label, options) => progress.counter(label, options),
  };
}

function otherSinks(self: string, deps: ContextDeps): Promise<void> {
  const others = [...deps.sinkDone].filter(([id]) => id !== self).map(([, d]) => d.promise);
  const aborted = new Promise<void>((_resolve, reject) => {
    if (deps.signal.aborted) reject(deps.signal.reason);
    deps.signal.addEventListener('abort', () => reject(deps.signal.reason), { once: true });
  });
  return Promise.race([Promise.all(others).then(() => undefined), aborted]);
}

interface ConsumerInfo {
  count: number;
  side: boolean;
}

function countConsumers(plan: Plan): Map<string, ConsumerInfo> {
  const result = new Map<string, ConsumerInfo>();
  for (const node of plan.nodes) {
    const sidePorts = new Set(node.def.kind === 'source' ? [] : node.def.inputs.side ?? []);
    for (const input of node.inputs) {
      const info = result.get(input.node) ?? { count: 0, side: false };
      info.count += 1;
      info.side ||= sidePorts.has(input.port);
      result.set(input.node, info);
    }
  }
  return result;
}

/**
 * Hands each consumer its own view of a node's output. One consumer reads it directly; several
 * share it through highland forks (backpressure from the slowest). A side input is a small table:
 * it is collected once and replayed to every consumer, so a node can hold it while it waits on
 * another input without stalling the fork.
 */
function fanOut(stream: Stream<Batch>, info: ConsumerInfo, all: Stream<unknown>[]): () => Stream<Batch> {
  if (info.side) {
    let collected: Promise<Batch[]> | undefined;
    return () => {
      collected ??= stream.collect().toPromise(Promise);
      const table = collected;
      // A failed run destroys the replay, possibly before the table arrives: nothing may be pushed then.
      const replay: Stream<Batch> = _<Batch>((push) => {
        table.then(
          (batches) => {
            if (isEnded(replay)) return;
            for (const batch of batches) push(null, batch);
            push(null, _.nil);
          },
          (error: Error) => {
            if (isEnded(replay)) return;
            push(error);
            push(null, _.nil);
          },
        );
      });
      all.push(replay as Stream<unknown>);
      return replay;
    };
  }
  if (info.count <= 1) return () => stream;
  return () => {
    const fork = stream.fork();
    all.push(fork as Stream<unknown>);
    return fork;
  };
}

/** highland sets `ended` once a stream has finished or been destroyed; its typings leave it out. */
const isEnded = (stream: object) => (stream as { ended?: boolean }).ended === true;

function collectInputs(planned: PlannedNode, outputsOf: Map<string, () => Stream<Batch>>): Inputs {
  const ports: Record<string, Stream<Batch>> = {};
  const list: Stream<Batch>[] = [];
  for (const input of planned.inputs) {
    const stream = outputsOf.get(input.node)!();
    list.push(stream);
    ports[input.port] ??= stream;
  }
  return { ports, list };
}

/** Shows the first stage that still has unfinished nodes, as `k/N name`. */
function trackStages(plan: Plan, reporter: Reporter, signal: AbortSignal) {
  const stages = plan.spec.stages;
  const pending = new Map<string, Set<string>>(stages.map((s) => [s, new Set<string>()]));
  const finished = new Set<string>();
  for (const node of plan.nodes) if (node.spec.stage) pending.get(node.spec.stage)!.add(node.spec.id);
  let shown = -1;
  const refresh = () => {
    let current = stages.findIndex((s) => pending.get(s)!.size > 0);
    if (current === -1) current = stages.length - 1;
    if (stages.length && current !== shown) {
      for (let k = Math.max(shown + 1, 0); k <= current; k++) reporter.stage(k + 1, stages.length, stages[k]!);
      shown = current;
    }
  };
  refresh();
  return {
    done(id: string) {
      if (finished.has(id) || signal.aborted) return;
      finished.add(id);
      for (const set of pending.values()) set.delete(id);
      refresh();
    },
  };
}
