import os from 'node:os';
import type { MicroBatch } from '../../transforms/train/types.ts';

/** Frame types of the pipe protocol (trainer/PROTOCOL.md): `u8 type | u32 LE length | payload`. */
export const FRAME = { HELLO: 1, PHASE: 2, BATCH: 3, EVAL: 4, END: 5 } as const;
export const PROTOCOL_VERSION = 1;

const FLAG_ENDS_STEP = 1;
const FLAG_ENGLISH = 2;
const FLAG_PADDING = 4;
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

/** What a frame says about its micro-batch beyond the arrays (trainer/PROTOCOL.md, BATCH and EVAL). */
export interface BatchMeta {
  /** EVAL of English-retention texts (flags bit 1). */
  english?: boolean;
  /** BATCH: completion tokens in this rank's micro-batches of the step; the step's own count by default. */
  rankTokens?: number;
  /** BATCH with no rows that keeps a rank in step with the others (flags bit 2). */
  padding?: boolean;
}

/**
 * BATCH or EVAL: 5 × u32 header (rows, seq_len, flags, step_completion_tokens,
 * rank_completion_tokens), then input_ids, labels, position_ids as int32.
 */
export function batchFrame(
  type: typeof FRAME.BATCH | typeof FRAME.EVAL,
  batch: MicroBatch,
  meta: BatchMeta = {},
): Buffer {
  const cells = batch.rows * batch.seqLen;
  const buffer = frame(type, BATCH_HEADER + 3 * 4 * cells);
  const flags =
    (batch.endsStep ? FLAG_ENDS_STEP : 0) | (meta.english ? FLAG_ENGLISH : 0) | (meta.padding ? FLAG_PADDING : 0);
  const header = [
    batch.rows,
    batch.seqLen,
    flags,
    batch.stepCompletionTokens,
    meta.rankTokens ?? batch.stepCompletionTokens,
  ];
  let at = FRAME_HEADER;
  for (const value of header) at = buffer.writeUInt32LE(value, at);
  for (const array of [batch.inputIds, batch.labels, batch.positionIds]) {
    buffer.set(new Uint8Array(array.buffer, array.byteOffset, cells * 4), at);
    at += cells * 4;
  }
  return buffer;
}
