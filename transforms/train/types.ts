/** Rows passed between the train nodes. */

/** One prep row as the chat template rendered it: the prompt is masked, the completion is learned. */
export interface FormattedExample {
  key: string;
  /** Everything the template puts before the assistant's content. */
  prompt: string;
  /** The assistant's content followed by the end-of-turn token. */
  completion: string;
  /** What the row is, for the per-phase counts: a prep task (A, B, C) or a general-mix source. */
  group?: string;
}

/** A formatted example as token ids; ids[0, promptLen) are the prompt. */
export interface TokenizedExample {
  key: string;
  ids: Int32Array;
  promptLen: number;
  group?: string;
}

export const IGNORE_INDEX = -100;

/** Micro-batch arrays, rows × seqLen each, row-major; labels are aligned with input_ids (no shift). */
export interface MicroBatch {
  rows: number;
  seqLen: number;
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  /** Last micro-batch of an optimizer step. */
  endsStep: boolean;
  /** Completion tokens over every micro-batch of this optimizer step (the loss normaliser). */
  stepCompletionTokens: number;
}

export interface PhasePlan {
  kind: 'phase';
  name: string;
  totalSteps: number;
  epochs: number;
  trainExamples: number;
  evalExamples: number;
  trainSequences: number;
  evalSequences: number;
  /** Examples by group (task or general-mix source), trained and held out. */
  rows: { train: Record<string, number>; eval: Record<string, number> };
  /** Set when the run resumes inside this phase: the optimizer steps its checkpoint has done. */
  resumeStep?: number;
}

/** What pack-steps hands the trainer sink: the phase plan first, then train and eval micro-batches. */
export type TrainItem =
  | PhasePlan
  | { kind: 'batch'; step: number; batch: MicroBatch }
  /** Held-out rows of the phase, or (english) the English-retention texts. */
  | { kind: 'eval'; batch: MicroBatch; english?: boolean };
