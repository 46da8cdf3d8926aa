/**
 * A growable byte buffer that text is written into as UTF-8, for writers that assemble output
 * bytes without making strings of it (prep's JSON Lines, the Parquet sink's text columns).
 */
export class Utf8Buffer {
  protected buffer: Buffer;
  protected size = 0;

  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  /** The whole buffer, of which the first `position` bytes are written. */
  get bytes(): Buffer {
    return this.buffer;
  }

  get position(): number {
    return this.size;
  }

  /** Appends `text`, which the caller knows is all ASCII: copied byte for byte, with no UTF-8 encoding pass. */
  ascii(text: string): void {
    if (this.size + text.length > this.buffer.length) this.grow(text.length);
    this.size += this.buffer.write(text, this.size, 'latin1');
  }

  /** Appends `src` (a view made once and reused: a subarray per copy would be garbage by the million). */
  copy(src: Uint8Array): void {
    if (this.size + src.length > this.buffer.length) this.grow(src.length);
    this.buffer.set(src, this.size);
    this.size += src.length;
  }

  /** Appends a few bytes: a loop beats a native copy's call overhead below a few dozen. */
  smallCopy(src: Uint8Array): void {
    if (this.size + src.length > this.buffer.length) this.grow(src.length);
    const { buffer } = this;
    let at = this.size;
    for (let i = 0; i < src.length; i++) buffer[at++] = src[i]!;
    this.size = at;
  }

  /** Appends `text` as UTF-8. */
  text(text: string): void {
    // A UTF-16 unit never takes more than 3 UTF-8 bytes, and Buffer#write silently stops at the end.
    if (this.size + text.length * 3 > this.buffer.length) this.grow(text.length * 3);
    this.size += this.buffer.write(text, this.size);
  }

  byte(value: number): void {
    if (this.size === this.buffer.length) this.grow(1);
    this.buffer[this.size++] = value;
  }

  protected grow(need: number): void {
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.size + need));
    this.buffer.copy(grown, 0, 0, this.size);
    this.buffer = grown;
  }
}
