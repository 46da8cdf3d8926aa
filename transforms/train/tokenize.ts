import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { _ } from '../../engine/stream.ts';
import { loadTrainTokenizer } from './tokenizer.ts';
import { readAddedTokens, readTokenizerSettings } from './tokenizer-files.ts';
import { extendedTokenizerOptions, tokenizerDir } from './tokenizer-options.ts';
import type { FormattedExample, TokenizedExample } from './types.ts';

/**
 * Prompt and completion are encoded separately, as inference sees them: the prompt alone, then
 * the tokens the model generates. Encoding runs on the binding's own threads, so two batches
 * are kept in flight to overlap it with the chat rendering upstream.
 */
export default defineTransform({
  type: 'tokenize',
  kind: 'transform',
  description:
    'Encodes formatted examples with the base tokenizer plus the semantic tokens (same ids as the trainer worker).',
  options: z.strictObject({ ...extendedTokenizerOptions }),
  inputs: { in: port<FormattedExample>() },
  stats: z.object({ examples: z.number(), tokens: z.number(), tokens_per_s: z.number() }),
  create(ctx, inputs) {
    const dir = tokenizerDir(ctx.options);
    const ready = (async () => {
      const tokenizer = await loadTrainTokenizer(dir, readAddedTokens(ctx.options.semantic_vocab));
      // The completion text ends with the end-of-turn token; it must stay one id to be learned as a stop.
      await tokenizer.singleId(readTokenizerSettings(dir).eosToken);
      return tokenizer;
    })();
    let examples = 0;
    let tokens = 0;
    let encodeSeconds = 0;
    const counter = ctx.progress.counter('tokenized', { unit: 'examples' });
    const encode = async (batch: FormattedExample[]): Promise<TokenizedExample[]> => {
      const tokenizer = await ready;
      const started = performance.now();
      const encoded = await tokenizer.encode([...batch.map((e) => e.prompt), ...batch.map((e) => e.completion)]);
      encodeSeconds += (performance.now() - started) / 1000;
      return batch.map((example, i) => {
        const prompt = encoded[i]!;
        const completion = encoded[batch.length + i]!;
        const ids = new Int32Array(prompt.length + completion.length);
        ids.set(prompt);
        ids.set(completion, prompt.length);
        tokens += ids.length;
        return { key: example.key, ids, promptLen: prompt.length, ...(example.group ? { group: example.group } : {}) };
      });
    };
    return inputs.ports.in
      .map((batch) => _(encode(batch)))
      .parallel(2)
      .consume<TokenizedExample[]>((error, batch, push, next) => {
        if (error) return (push(error), next());
        if (_.isNil(batch)) {
          counter.done();
          const rate = encodeSeconds > 0 ? Math.round(tokens / encodeSeconds) : 0;
          Object.assign(ctx.stats, { examples, tokens, tokens_per_s: rate });
          ctx.progress.log(
            `tokenized ${examples.toLocaleString('en-US')} examples, ` +
              `${tokens.toLocaleString('en-US')} tokens (${rate.toLocaleString('en-US')} tokens/s)`,
          );
          return push(null, batch);
        }
        examples += batch.length;
        counter.add(batch.length);
        push(null, batch);
        next();
      });
  },
});
