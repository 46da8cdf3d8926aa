import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hash53 } from '../../engine/random.ts';
import { priorityOrder } from '../../engine/keyed-order.ts';

/** The order priorityOrder must give, by a plain comparator. */
const reference = (priorities: number[], keys: string[]) =>
  priorities
    .map((_, i) => i)
    .sort((a, b) => priorities[a]! - priorities[b]! || (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));

const order = (priorities: number[], keys: string[]) => [
  ...priorityOrder(Float64Array.from(priorities), (i) => keys[i]!),
];

test('priorityOrder sorts keyed-hash priorities as a comparator would', () => {
  const keys = Array.from({ length: 5000 }, (_, i) => `B:${i}:last`);
  const priorities = keys.map((key) => hash53(key));
  assert.deepEqual(order(priorities, keys), reference(priorities, keys));
});

test('priorityOrder: priorities that share their top bits, or tie, are compared in full and then by key', () => {
  // 2^40 + small offsets share every bit above the packed position's.
  const priorities = [2 ** 40 + 3, 2 ** 40 + 1, 2 ** 40 + 2, 2 ** 40 + 1, 7, 2 ** 40 + 2];
  const keys = ['a', 'z', 'c', 'b', 'e', 'b'];
  assert.deepEqual(order(priorities, keys), [4, 3, 1, 5, 2, 0]);
  assert.deepEqual(order(priorities, keys), reference(priorities, keys));
});

test('priorityOrder takes negative, fractional and out-of-range priorities too', () => {
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (const priorities of [
    [-5, 3.5, -5.25, 0, 2 ** 52, -(2 ** 53)],
    [2 ** 60, 1, -(2 ** 70), 1, Infinity, 0],
  ])
    assert.deepEqual(order(priorities, keys), reference(priorities, keys));
  assert.deepEqual(order([], []), []);
});
