/**
 * Tokenized examples kept compactly for the whole phase: one growing Int32Array of ids plus
 * per-example offsets. Per-example typed arrays would cost ~100 bytes of overhead each, which
 * adds up to hundreds of MB at a million rows; this keeps memory at ~4 bytes per token.
 */
export class ExampleStore {
  private tokens = new Int32Array(1 << 16);
  private used = 0;
  private readonly starts: number[] = [];
  private readonly lengths: number[] = [];
  private readonly promptLens: number[] = [];

  get count(): number {
    return this.starts.length;
  }

  add(ids: Int32Array, promptLen: number): void {
    if (this.used + ids.length > this.tokens.length) {
      const grown = new Int32Array(Math.max(this.tokens.length * 2, this.used + ids.length));
      grown.set(this.tokens.subarray(0, this.used));
      this.tokens = grown;
    }
    this.tokens.set(ids, this.used);
    this.starts.push(this.used);
    this.lengths.push(ids.length);
    this.promptLens.push(promptLen);
    this.used += ids.length;
  }

  length(i: number): number {
    return this.lengths[i]!;
  }

  promptLen(i: number): number {
    return this.promptLens[i]!;
  }

  completionTokens(i: number): number {
    return this.lengths[i]! - this.promptLens[i]!;
  }

  ids(i: number): Int32Array {
    return this.tokens.subarray(this.starts[i]!, this.starts[i]! + this.lengths[i]!);
  }
}
