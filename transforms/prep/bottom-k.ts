/**
 * Keeps the `k` items with the smallest priority seen so far (a bottom-k sample). With
 * priorities from a keyed hash, the kept set is a uniform sample without replacement that does
 * not depend on the order items arrive in, in O(k) memory. Ties break on the key.
 */
export class BottomK<T> {
  /** Max-heap on (priority, key): the root is the item the next better one evicts. */
  private readonly heap: { priority: number; key: string; item: T }[] = [];

  constructor(readonly k: number) {}

  get size(): number {
    return this.heap.length;
  }

  offer(priority: number, key: string, item: T): void {
    if (this.k === 0) return;
    const heap = this.heap;
    if (heap.length < this.k) {
      heap.push({ priority, key, item });
      this.up(heap.length - 1);
    } else if (before(priority, key, heap[0]!)) {
      heap[0] = { priority, key, item };
      this.down(0);
    }
  }

  /** The kept items, smallest priority first. The sampler is left empty, so it no longer holds them. */
  take(): T[] {
    const entries = this.heap.splice(0).sort((a, b) => (before(a.priority, a.key, b) ? -1 : 1));
    return entries.map((e) => e.item);
  }

  private up(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[parent]!.priority, heap[parent]!.key, heap[i]!)) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let largest = i;
      if (left < heap.length && before(heap[largest]!.priority, heap[largest]!.key, heap[left]!)) largest = left;
      if (right < heap.length && before(heap[largest]!.priority, heap[largest]!.key, heap[right]!)) largest = right;
      if (largest === i) return;
      [heap[largest], heap[i]] = [heap[i]!, heap[largest]!];
      i = largest;
    }
  }
}

/** Whether (priority, key) sorts strictly before the entry. */
function before(priority: number, key: string, entry: { priority: number; key: string }): boolean {
  return priority < entry.priority || (priority === entry.priority && key < entry.key);
}
