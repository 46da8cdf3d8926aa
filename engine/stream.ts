import { Readable } from 'node:stream';
import highland from 'highland';

/** The stream type every node consumes and produces (highland 2, with backpressure). */
export type Stream<T> = Highland.Stream<T>;
export const _ = highland;

/**
 * A highland stream from an async iterable. highland 2.13 does not take async iterables itself;
 * `Readable.from` pulls one item per read, so backpressure reaches the generator.
 */
export function fromAsync<T>(iterable: AsyncIterable<T>, onClose: (fn: () => void) => void): Stream<T> {
  const readable = Readable.from(iterable, { objectMode: true, highWaterMark: 1 });
  // highland stops listening once its stream is destroyed, as a failed or interrupted run does;
  // a generator that throws while it unwinds after that would crash the process with an uncaught
  // 'error' event. The run has its reason by then, so such an error has nothing left to tell.
  readable.on('error', () => {});
  onClose(() => {
    readable.destroy();
  });
  return highland<T>(readable);
}

/** A highland stream from a synchronous generator, pulled one value per demand. */
export function fromGenerator<T>(make: () => Iterator<T>): Stream<T> {
  let iterator: Iterator<T> | undefined;
  return highland<T>((push, next) => {
    try {
      iterator ??= make();
      const step = iterator.next();
      if (step.done) push(null, highland.nil);
      else {
        push(null, step.value);
        next();
      }
    } catch (error) {
      push(error as Error);
      push(null, highland.nil);
    }
  });
}

/**
 * Like highland's `collect()`, one array of every value, but not kept once handed on: `collect()`
 * keeps its array in a closure for as long as the stream lives, so a consumer that drops values
 * as it goes (the prep shuffle drops each row once written) would free none of them.
 */
export function collectOnce<T>(stream: Stream<T>): Stream<T[]> {
  let values: T[] | undefined = [];
  return stream.consume<T[]>((error, value, push, next) => {
    if (error) {
      push(error);
      next();
    } else if (value === highland.nil) {
      const all = values!;
      values = undefined;
      push(null, all);
      push(null, highland.nil);
    } else {
      values!.push(value as T);
      next();
    }
  });
}

/** Every row of a stream of batches, for small tables (side inputs). */
export async function collectRows<T>(stream: Stream<T[]>): Promise<T[]> {
  const batches = await stream.collect().toPromise(Promise);
  return batches.flat();
}
