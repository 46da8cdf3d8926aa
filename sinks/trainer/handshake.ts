import { existsSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../../engine/errors.ts';
import { tokenizersBinding, type TrainTokenizer } from '../../transforms/train/tokenizer.ts';
import type { WorkerEvent } from './worker-process.ts';

/** Text covering plain words, chat markup and added tokens, encoded by both tokenizers. */
const probeText = (added: readonly string[]) =>
  `<|im_start|>user\nWhich anime is ${added.slice(0, 8).join('')}? ` +
  `Ünïcödé, 数字 123.<|im_end|>\n${added.slice(-8).join(' ')}`;

/**
 * The ids the batches are built with must be the worker's: its reported ids for the added tokens
 * must equal ours, and the tokenizer it saved must encode a probe text exactly as ours does (which
 * catches a different base vocabulary behind equal added-token ids).
 */
export async function checkHandshake(
  ready: WorkerEvent,
  ours: TrainTokenizer,
  added: readonly string[],
): Promise<void> {
  const theirs = ready.added_token_ids;
  if (!Array.isArray(theirs) || theirs.length !== ours.addedIds.length)
    throw new DataError(
      `trainer worker reported ${Array.isArray(theirs) ? theirs.length : 'no'} ` +
        `added token ids, expected ${ours.addedIds.length}`,
    );
  const differs = theirs.findIndex((id, i) => id !== ours.addedIds[i]);
  if (differs >= 0)
    throw new DataError(
      `token id mismatch: ${added[differs]} is ${ours.addedIds[differs]} ` +
        `here but ${theirs[differs]} in the trainer worker`,
    );
  const vocabSize = Number(ready.vocab_size);
  const largest = Math.max(...ours.addedIds);
  if (!(vocabSize > largest))
    throw new DataError(`trainer worker's vocabulary of ${ready.vocab_size} has no row for token id ${largest}`);

  const saved = path.join(String(ready.tokenizer_dir), 'tokenizer.json');
  if (!existsSync(saved))
    throw new DataError(`trainer worker reported tokenizer_dir ${ready.tokenizer_dir} but ${saved} does not exist`);
  const text = probeText(added);
  const [mine] = await ours.encode([text]);
  const workers = (
    await (await tokenizersBinding()).fromFile(saved).encode(text, null, { addSpecialTokens: false })
  ).getIds();
  if (mine!.length !== workers.length || workers.some((id, i) => id !== mine![i]))
    throw new DataError(
      `the tokenizer saved by the trainer worker (${saved}) encodes ` +
        `text differently from ${ours.dir}: they must be the same tokenizer`,
    );
}
