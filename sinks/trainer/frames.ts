import os from 'node:os';
import type { MicroBatch } from '../../transforms/train/types.ts';

/** Frame types of the pipe protocol (trainer/PROTOCOL.md): `u8 type | u32 LE length | payload`. */
export const FRAME = { HELLO: 1, PHASE: 2, BATCH: 3, EVAL: 4, END: 5 } as const;
export const PROTOCOL_VERSION = 1;

const FLAG_ENDS_STEP = 1;
const FLAG_ENGLISH = 2;
const FRAME_HEADER = 5;
const BATCH_HEADER = 20;

// Batch arrays are copied as raw memory, which is the wire's little-endian order only on a little-endian host.
if (os.endianness() !== 'LE') throw new Error('the trainer pipe protocol needs a little-endian host');

function frame(type: number, payloadLength: number): Buffer {
  const buffer = Buffer.allocUnsafe(FRAME_HEADER + payloadLength);
  buffer.writeUInt8(type, 0);
  buffer.writeUInt32LE(payloadLength, 1);
  return buffer;
}

export function jsonFrame(type: typeof FRAME.HELLO | typeof FRAME.PHASE, value: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(value), 'utf8');
  const buffer = frame(type, payload.length);
  payload.copy(buffer, FRAME_HEADER);
  return buffer;
}

export const endFrame = (): Buffer => frame(FRAME.END, 0);

/**
 * BATCH or EVAL: 5 × u32 header (rows, seq_len, flags,
 * step_completion_tokens, 0), then input_ids, labels, position_ids as int32. `english` marks an
 * EVAL of English-retention texts (flags bit 1).
 */
export function batchFrame(type: typeof FRAME.BATCH | typeof FRAME.EVAL, batch: MicroBatch, english = false): Buffer {
  const cells = batch.rows * batch.seqLen;
  const buffer = frame(type, BATCH_HEADER + 3 * 4 * cells);
  let at = FRAME_HEADER;
  for (const value of [
    batch.rows,
    batch.seqLen,
    (batch.endsStep ? FLAG_ENDS_STEP : 0) | (english ? FLAG_ENGLISH : 0),
    batch.stepCompletionTokens,
    0,
  ])
    at = buffer.writeUInt32LE(value, at);
  for (const array of [batch.inputIds, batch.labels, batch.positionIds]) {
    buffer.set(new Uint8Array(array.buffer, array.byteOffset, cells * 4), at);
    at += cells * 4;
  }
  return buffer;
}
