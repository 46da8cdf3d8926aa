import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { _, collectOnce, fromGenerator, type Stream } from '../../engine/stream.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Pulls one value from `stream` and leaves it open, as a consumer midway through its output does. */
const pullOne = <T>(stream: Stream<T>) => new Promise<void>((resolve) => stream.pull(() => resolve()));

/** Whether the first collected value is still reachable while the stream after it is midway. */
async function heldMidway(collect: (s: Stream<object>) => Stream<object[]>): Promise<boolean> {
  let ref: WeakRef<object> | undefined;
  // Values made as pulled, as an upstream node makes them: an array source would hold them itself.
  const source = fromGenerator<object>(function* () {
    yield { row: 1 };
    yield { row: 2 };
  });
  const rest = collect(source).flatMap((values) => {
    ref = new WeakRef(values[0]!);
    return _([1, 2, 3]);
  });
  await pullOne(rest);
  await new Promise(setImmediate);
  gc();
  return ref!.deref() !== undefined;
}

test('collectOnce hands on every value, in order, as one array', async () => {
  const all = await collectOnce(_([1, 2, 3])).toPromise(Promise);
  assert.deepEqual(all, [1, 2, 3]);
});

test('collectOnce passes errors on', async () => {
  const failing = _([1, 2]).map((n) => {
    if (n === 2) throw new Error('bad row');
    return n;
  });
  await assert.rejects(collectOnce(failing).toPromise(Promise), /bad row/);
});

test("collectOnce does not keep what it handed on, where highland's collect() does", async () => {
  assert.equal(await heldMidway((s) => s.collect()), true);
  assert.equal(await heldMidway(collectOnce), false);
});
