import { z } from 'zod';
import { defineTransform, port, type NodeContext } from '../../engine/node.ts';
import { _, type Stream } from '../../engine/stream.ts';
import { ExampleStore } from './example-store.ts';
import { int } from './option-types.ts';
import { layOutRows, packSequences, sequenceCompletionTokens } from './packing.ts';
import { evalDue } from './schedule.ts';
import { loadTrainTokenizer } from './tokenizer.ts';
import { readAddedTokens, readTokenizerSettings } from './tokenizer-files.ts';
import { extendedTokenizerOptions, tokenizerDir } from './tokenizer-options.ts';
import type { TokenizedExample, TrainItem } from './types.ts';

const options = z.strictObject({
  ...extendedTokenizerOptions,
  max_seq_len: int().positive().default(1024).describe('tokens per packed sequence; longer texts are truncated'),
  eval_batch_size: int().positive().default(2).describe('packed sequences per English eval micro-batch'),
  eval_every_steps: int()
    .nonnegative()
    .default(500)
    .describe('English eval after every this many steps, and at the end of each phase; 0: only at the ends'),
});

const englishStats = z.object({
  texts: z.number(),
  scored_tokens: z.number(),
  sequences: z.number(),
  evals: z.number().describe('English eval passes inserted (one before training, then as due)'),
});

type Context = NodeContext<z.output<typeof options>, typeof englishStats>;

/**
 * English retention: inserts the English texts as EVAL micro-batches (flagged english) into the
 * trainer's stream, once before the first phase trains (the base model's perplexity) and after
 * every step an eval is due at, so the worker reports perplexity beside the held-out loss. Every
 * token but a text's first is scored; texts are packed without attention across them, so the
 * token-weighted perplexity does not depend on the batch size.
 */
export default defineTransform({
  type: 'english-eval',
  kind: 'transform',
  description:
    "Adds English-retention eval batches (perplexity on plain texts) to the trainer's stream: " +
    'before training and at every eval point.',
  options,
  inputs: { steps: port<TrainItem>(), texts: port<TokenizedExample>() },
  stats: englishStats,
  create(ctx, inputs) {
    const batches = (async () => {
      const [store, pad] = await Promise.all([collect(ctx, inputs.ports.texts), padId(ctx)]);
      return englishBatches(ctx, store, pad);
    })();
    let phases = 0;
    let totalSteps = 0;
    let evals = 0;
    const expand = (batch: TrainItem[], english: TrainItem[]): TrainItem[] => {
      const out: TrainItem[] = [];
      const addEnglish = () => {
        if (!english.length) return;
        ctx.stats.evals = ++evals;
        out.push(...english);
      };
      for (const item of batch) {
        out.push(item);
        if (item.kind === 'phase') {
          totalSteps = item.totalSteps;
          if (phases++ === 0) addEnglish();
        } else if (
          item.kind === 'batch' &&
          item.batch.endsStep &&
          evalDue(item.step, totalSteps, ctx.options.eval_every_steps)
        )
          addEnglish();
      }
      return out;
    };
    // consume, not _(promise).flatMap: a promise settling after a failed run ended the stream
    // would call next() past its end.
    return inputs.ports.steps.consume<TrainItem[]>((error, batch, push, next) => {
      if (error) return (push(error), next());
      if (_.isNil(batch)) return push(null, batch);
      batches.then(
        (english) => (push(null, expand(batch, english)), next()),
        (failure: Error) => (push(failure), next()),
      );
    });
  },
});

async function padId(ctx: Context): Promise<number> {
  const dir = tokenizerDir(ctx.options);
  const tokenizer = await loadTrainTokenizer(dir, readAddedTokens(ctx.options.semantic_vocab));
  return tokenizer.singleId(readTokenizerSettings(dir).padToken);
}

/** The texts, truncated to max_seq_len, each scored from its second token (the first has no context). */
function collect(ctx: Context, input: Stream<TokenizedExample[]>): Promise<ExampleStore> {
  const store = new ExampleStore();
  return new Promise((resolve, reject) => {
    input
      .stopOnError(reject)
      .each((batch) => {
        for (const text of batch) {
          const ids = text.ids.subarray(0, ctx.options.max_seq_len);
          if (ids.length >= 2) store.add(ids, Math.max(1, Math.min(text.promptLen, ids.length - 1)));
        }
      })
      .done(() => resolve(store));
  });
}

function englishBatches(ctx: Context, store: ExampleStore, pad: number): TrainItem[] {
  const o = ctx.options;
  const sequences = packSequences(store, o.max_seq_len);
  const items: TrainItem[] = [];
  let scored = 0;
  for (let at = 0; at < sequences.length; at += o.eval_batch_size) {
    const group = sequences.slice(at, at + o.eval_batch_size);
    const tokens = group.reduce((n, s) => n + sequenceCompletionTokens(store, s), 0);
    scored += tokens;
    const batch = { rows: group.length, ...layOutRows(store, group, o.max_seq_len, pad), endsStep: false };
    items.push({ kind: 'eval', english: true, batch: { ...batch, stepCompletionTokens: tokens } });
  }
  Object.assign(ctx.stats, { texts: store.count, scored_tokens: scored, sequences: sequences.length, evals: 0 });
  if (store.count === 0) ctx.progress.warn('no English texts to evaluate: English perplexity is not reported');
  else
    ctx.progress.log(
      `English retention: ${store.count.toLocaleString('en-US')} texts, ` +
        `${scored.toLocaleString('en-US')} scored tokens in ${items.length} eval batches`,
    );
  return items;
}
