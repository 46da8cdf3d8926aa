import type { ExampleStore } from './example-store.ts';
import { IGNORE_INDEX } from './types.ts';

/** A packed sequence: the examples [first, end) of a store, back to back. */
export interface Sequence {
  first: number;
  end: number;
}

/**
 * Next-fit packing in input order: an example joins the open sequence if it fits, else it opens a
 * new one. Deterministic, never splits an example, and streams (a closed sequence never changes).
 * Examples are at most maxLen long (truncated before they are stored).
 */
export function packSequences(store: ExampleStore, maxLen: number): Sequence[] {
  const sequences: Sequence[] = [];
  let first = 0;
  let used = 0;
  for (let i = 0; i < store.count; i++) {
    const length = store.length(i);
    if (used > 0 && used + length > maxLen) {
      sequences.push({ first, end: i });
      first = i;
      used = 0;
    }
    used += length;
  }
  if (store.count > first) sequences.push({ first, end: store.count });
  return sequences;
}

export const sequenceLength = (store: ExampleStore, s: Sequence) => {
  let n = 0;
  for (let i = s.first; i < s.end; i++) n += store.length(i);
  return n;
};

export const sequenceCompletionTokens = (store: ExampleStore, s: Sequence) => {
  let n = 0;
  for (let i = s.first; i < s.end; i++) n += store.completionTokens(i);
  return n;
};

export interface RowArrays {
  seqLen: number;
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
}

/**
 * Lays sequences out as rows. Positions restart at 0 for every example, which the worker turns
 * into a block-diagonal mask (no attention across examples); labels exist only on completion
 * tokens. The padding tail is a run of its own (positions from 0, no labels). Rows are as long as
 * the longest one, rounded up to a multiple of 8 for the GPU's matrix units, at most maxLen.
 */
export function layOutRows(
  store: ExampleStore,
  sequences: readonly Sequence[],
  maxLen: number,
  padId: number,
): RowArrays {
  const longest = Math.max(...sequences.map((s) => sequenceLength(store, s)));
  const seqLen = Math.min(maxLen, Math.ceil(longest / 8) * 8);
  const size = sequences.length * seqLen;
  const inputIds = new Int32Array(size);
  const labels = new Int32Array(size).fill(IGNORE_INDEX);
  const positionIds = new Int32Array(size);
  sequences.forEach((sequence, row) => {
    let at = row * seqLen;
    for (let i = sequence.first; i < sequence.end; i++) {
      const ids = store.ids(i);
      const promptLen = store.promptLen(i);
      inputIds.set(ids, at);
      labels.set(ids.subarray(promptLen), at + promptLen);
      for (let p = 0; p < ids.length; p++) positionIds[at + p] = p;
      at += ids.length;
    }
    const rowEnd = (row + 1) * seqLen;
    inputIds.fill(padId, at, rowEnd);
    for (let p = 0; at + p < rowEnd; p++) positionIds[at + p] = p;
  });
  return { seqLen, inputIds, labels, positionIds };
}
