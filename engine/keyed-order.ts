const TWO_POW_53 = 2 ** 53;

const byPriorityThenKey = (priorities: Float64Array, keyAt: (i: number) => string) => (a: number, b: number) => {
  if (priorities[a]! !== priorities[b]!) return priorities[a]! - priorities[b]!;
  const ka = keyAt(a);
  const kb = keyAt(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/**
 * Positions 0…n-1 ordered by (priorities[i], keyAt(i)) ascending: the order sampling and shuffling
 * give rows. Each priority is packed with its position into one exact double (its top bits, then
 * the position) and the doubles are sorted natively, which measured ~3x faster than a comparator
 * on 400k rows. Only positions whose priorities share those top bits, a handful for keyed hashes,
 * are then compared in full. Priorities outside ±2^53 (or NaN) take the comparator all the way.
 */
export function priorityOrder(priorities: Float64Array, keyAt: (i: number) => string): Uint32Array {
  const n = priorities.length;
  const compare = byPriorityThenKey(priorities, keyAt);
  const unit = 2 ** Math.max(1, Math.ceil(Math.log2(n + 1)));
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = priorities[i]!;
    if (!(p >= -TWO_POW_53 && p < TWO_POW_53)) return new Uint32Array(n).map((_, j) => j).sort(compare);
    packed[i] = Math.floor(p / unit) * unit + i;
  }
  packed.sort();
  const order = new Uint32Array(n);
  let runStart = 0;
  let runTop = NaN;
  for (let i = 0; i <= n; i++) {
    const top = i < n ? Math.floor(packed[i]! / unit) : NaN;
    if (i < n) order[i] = packed[i]! - top * unit;
    if (top !== runTop) {
      if (i - runStart > 1) order.subarray(runStart, i).sort(compare);
      runStart = i;
      runTop = top;
    }
  }
  return order;
}

/** Positions of `items` ordered by (priority(key), key), as priorityOrder orders them. */
export function keyedOrder(items: readonly { key: string }[], priority: (key: string) => number): Uint32Array {
  return priorityOrder(
    Float64Array.from(items, (item) => priority(item.key)),
    (i) => items[i]!.key,
  );
}
