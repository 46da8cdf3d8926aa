import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { readLineBatches } from '../../engine/line-reader.ts';
import { _, collectOnce, fromAsync, fromGenerator, type Stream } from '../../engine/stream.ts';
import { within } from '../helpers/wait.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** One turn of the event loop: every pending microtask and process.nextTick callback has run by then. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

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
  await nextTurn();
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

test('fromAsync: a generator that throws after its stream was destroyed does not crash the process', async () => {
  // A failed or interrupted run destroys every stream, then a source still unwinding may throw
  // (the semantic-ID source found "no rows" in a file cut off by Ctrl-C): that once surfaced as an
  // uncaught 'error' event with a stack trace instead of the run's one-line error.
  let release!: () => void;
  const cutOff = new Promise<void>((resolve) => (release = resolve));
  let unwound!: () => void;
  const thrown = new Promise<void>((resolve) => (unwound = resolve));
  async function* rows() {
    try {
      yield [1];
      await cutOff;
      throw new Error('no rows after the interrupt');
    } finally {
      unwound();
    }
  }
  const closers: (() => void)[] = [];
  const stream = fromAsync(rows(), (close) => closers.push(close));
  await pullOne(stream);
  stream.destroy();
  const uncaught: Error[] = [];
  const onUncaught = (error: Error) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    release();
    // Waits for the throw itself, not for a time. What follows it (the rejected next(), the
    // stream's destroy, an 'error' event nobody hears) runs on microtasks and process.nextTick,
    // all of which have run before the next turn of the event loop.
    await within(thrown, 'the source to throw as it unwinds');
    await nextTurn();
    for (const close of closers) close();
    await nextTurn();
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.deepEqual(uncaught, []);
});

test('readLineBatches: an aborted read throws the abort reason, never ends as if the file were whole', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'animind-lines-')), 'rows.jsonl');
  writeFileSync(file, 'a\nb\n'.repeat(1000));
  const controller = new AbortController();
  const reason = new Error('interrupted by SIGINT');
  const read = async () => {
    for await (const _batch of readLineBatches(file, 10, controller.signal, 64)) controller.abort(reason);
  };
  await assert.rejects(read(), (error) => error === reason);
});
