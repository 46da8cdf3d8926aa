import type { Batch } from '../../engine/node.ts';
import { _, collectRows, type Stream } from '../../engine/stream.ts';
import type { CatalogEntry } from './types.ts';

/**
 * Streams `main` through `step` once the catalog (a side input: small, materialized once) is
 * held as a Map by anime_id.
 */
export function withCatalog<In, Out>(
  catalog: Stream<Batch<CatalogEntry>>,
  main: Stream<Batch<In>>,
  step: (lookup: ReadonlyMap<number, CatalogEntry>) => (batch: In[]) => Out[],
): Stream<Out[]> {
  const table = collectRows(catalog).then((rows) => new Map(rows.map((row) => [row.anime_id, row])));
  return _(table).flatMap((lookup) => main.map(step(lookup)));
}

/** Calls `fn` once the stream has ended, before downstream sees the end; a throw becomes a stream error. */
export function atEnd<T>(stream: Stream<T>, fn: () => void): Stream<T> {
  return stream.consume<T>((error, value, push, next) => {
    if (error) {
      push(error);
      next();
    } else if (_.isNil(value)) {
      try {
        fn();
      } catch (thrown) {
        push(thrown as Error);
      }
      push(null, value);
    } else {
      push(null, value);
      next();
    }
  });
}

/** highland sets `ended` once a stream has finished or been destroyed; its typings leave it out. */
const isEnded = (stream: object) => (stream as { ended?: boolean }).ended === true;

/**
 * Streams `main` through `step` with the value `ready` resolves to. Unlike withCatalog, `main` is
 * pulled from the start: for a node whose table comes from the same upstream as its main input,
 * which moves only as fast as its slowest reader. A batch that comes before the value waits for
 * it; one after goes through at once, so a run that is stopped meanwhile is never written to.
 */
export function withReady<S, In, Out>(
  ready: Promise<S>,
  main: Stream<Batch<In>>,
  step: (value: S, batch: In[]) => Out[],
): Stream<Out[]> {
  let known: { value: S } | undefined;
  ready.then(
    (value) => (known = { value }),
    () => {},
  );
  const out: Stream<Out[]> = main.consume<Out[]>((error, batch, push, next) => {
    if (error) {
      push(error);
      next();
      return;
    }
    if (_.isNil(batch)) return push(null, batch);
    const emit = (value: S) => {
      try {
        push(null, step(value, batch));
      } catch (thrown) {
        push(thrown as Error);
      }
      next();
    };
    if (known) return emit(known.value);
    ready.then(
      (value) => isEnded(out) || emit(value),
      (failure: Error) => {
        if (isEnded(out)) return;
        push(failure);
        next();
      },
    );
  });
  return out;
}

/**
 * Passes `stream` on until the run is stopped, then nothing more, not even its end. A stopped run
 * destroys its streams, and highland throws on a write to a destroyed one: an input that ends
 * later, as one waiting on a promise does, would otherwise crash the process instead of letting
 * the run end with its own error.
 */
export function untilStopped<T>(stream: Stream<T>, signal: AbortSignal): Stream<T> {
  return stream.consume<T>((error, value, push, next) => {
    if (signal.aborted) return;
    push(error, value);
    if (!_.isNil(value)) next();
  });
}
