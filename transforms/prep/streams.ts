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
