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

/**
 * A pool filled to a quota: a quota within the pool takes the items of smallest (priority(key, 0),
 * key); a larger one repeats the pool in passes, each visiting the whole pool, until the quota is
 * met, the last pass (cut short) in the keyed order of its pass number. `repeat(item, pass)` makes
 * the item of a later pass, which must have a key of its own (conventionally `<key>#<pass>`) so
 * every item keeps a unique key for a shuffle after. Items of pass 0 are the pool's own. Only the
 * cut pass is put in order: a shuffle gives every item its final place, so the order of a pass
 * taken whole is never seen.
 */
export function fillByPasses<T extends { key: string }>(
  pool: readonly T[],
  quota: number,
  priority: (key: string, pass: number) => number,
  repeat: (item: T, pass: number) => T,
): T[] {
  const out: T[] = [];
  if (quota <= 0 || pool.length === 0) return out;
  const whole = Math.floor(quota / pool.length);
  for (let pass = 0; pass < whole; pass++) for (const item of pool) out.push(pass === 0 ? item : repeat(item, pass));
  if (out.length < quota) {
    const order = keyedOrder(pool, (key) => priority(key, whole));
    for (let i = 0; out.length < quota; i++) {
      const item = pool[order[i]!]!;
      out.push(whole === 0 ? item : repeat(item, whole));
    }
  }
  return out;
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}
