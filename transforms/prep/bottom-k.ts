import { priorityOrder } from '../../engine/keyed-order.ts';

/**
 * Keeps the `k` items with the smallest priority seen so far (a bottom-k sample). With
 * priorities from a keyed hash, the kept set is a uniform sample without replacement that does
 * not depend on the order items arrive in, in O(k) memory. Ties break on the key.
 *
 * The heap is two parallel arrays rather than one object per entry: a sampler holds up to its
 * quota (hundreds of thousands of rows), and each entry as an object cost ~60 bytes more. Keys
 * are asked of the item only to break a tie, so a sampler holds no key strings.
 */
export class BottomK<T> {
  /** Max-heap on (priority, key): slot 0 holds the entry the next better one evicts. */
  private priorities = new Float64Array(0);
  private readonly items: T[] = [];

  constructor(
    readonly k: number,
    private readonly keyOf: (item: T) => string,
  ) {}

  get size(): number {
    return this.items.length;
  }

  offer(priority: number, item: T): void {
    if (this.k === 0) return;
    const n = this.items.length;
    if (n < this.k) {
      if (n === this.priorities.length) this.grow();
      this.set(n, priority, item);
      this.up(n);
    } else if (this.before(priority, item, 0)) {
      this.set(0, priority, item);
      this.down(0);
    }
  }

  /** The kept items, smallest priority first. The sampler is left empty, so it no longer holds them. */
  take(): T[] {
    const { items, keyOf } = this;
    const order = priorityOrder(this.priorities.subarray(0, items.length), (i) => keyOf(items[i]!));
    const taken = Array.from(order, (i) => items[i]!);
    this.priorities = new Float64Array(0);
    items.length = 0;
    return taken;
  }

  private grow(): void {
    const grown = new Float64Array(Math.min(this.k, Math.max(1024, this.priorities.length * 2)));
    grown.set(this.priorities);
    this.priorities = grown;
  }

  private set(i: number, priority: number, item: T): void {
    this.priorities[i] = priority;
    this.items[i] = item;
  }

  /** Whether (priority, key of item) sorts strictly before entry j. */
  private before(priority: number, item: T, j: number): boolean {
    const other = this.priorities[j]!;
    return priority < other || (priority === other && this.keyOf(item) < this.keyOf(this.items[j]!));
  }

  private swap(i: number, j: number): void {
    const { priorities, items } = this;
    const p = priorities[i]!;
    const item = items[i]!;
    this.set(i, priorities[j]!, items[j]!);
    this.set(j, p, item);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(this.priorities[parent]!, this.items[parent]!, i)) break;
      this.swap(parent, i);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let largest = i;
      if (left < n && this.before(this.priorities[largest]!, this.items[largest]!, left)) largest = left;
      if (right < n && this.before(this.priorities[largest]!, this.items[largest]!, right)) largest = right;
      if (largest === i) return;
      this.swap(largest, i);
      i = largest;
    }
  }
}
