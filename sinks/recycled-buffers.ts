/**
 * Byte buffers that go to a thread and come back. A batch's bytes are copied into one and
 * transferred, and the thread transfers the buffer back once done with it. Measured at 10M rows:
 * cloning each batch's ~1 MB (or transferring a fresh copy) cost the main thread ~0.5 s over 400
 * batches, most of it faulting in new memory; a few warm buffers in turn cost a plain copy.
 */
export class RecycledBuffers {
  private readonly free: ArrayBuffer[] = [];

  /** `bytes` copied into a buffer of this pool; transfer the view's buffer to the thread. */
  copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
    let buffer = this.free.pop();
    // Batches are alike in size, so a little headroom lets one buffer carry any of them.
    if (!buffer || buffer.byteLength < bytes.length) buffer = new ArrayBuffer(bytes.length + (bytes.length >> 2));
    const view = new Uint8Array(buffer, 0, bytes.length);
    view.set(bytes);
    return view;
  }

  /** Takes back a buffer the thread is done with. */
  recycle(buffer: ArrayBuffer): void {
    this.free.push(buffer);
  }
}
