import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineSource } from '../../engine/node.ts';
import { fromAsync } from '../../engine/stream.ts';
import { findPython, repoRoot } from '../../sinks/trainer/python.ts';
import { flag, int } from '../../transforms/train/option-types.ts';
import type { FormattedExample } from '../../transforms/train/types.ts';
import { hubRows, HubUnavailable, type HubDataset } from './hub-rows.ts';

/** `english_eval_dataset` names and the hub datasets they stand for: WikiText-2, raw, validation. */
export const KNOWN_TEXTS: Readonly<Record<string, HubDataset>> = {
  wikitext2: { id: 'Salesforce/wikitext', config: 'wikitext-2-raw-v1', split: 'validation' },
};

export const BUNDLED_TEXTS = path.join(repoRoot, 'fixtures/english/english-texts.txt');

const options = z.strictObject({
  dataset: z
    .string()
    .min(1)
    .default('wikitext2')
    .describe(
      'wikitext2 (WikiText-2 raw validation), a hub dataset id with a text column, ' +
        'or a local .txt (one text a line) or .jsonl ({"text": ...}) file',
    ),
  max_samples: int().positive().default(512).describe('texts kept: the first ones of at least min_chars'),
  min_chars: int().nonnegative().default(8).describe('shorter lines (after trimming) are skipped'),
  cache_dir: z.string().default('').describe("the datasets cache; empty: Hugging Face's default"),
  dry_run: flag(true).describe('a dataset that cannot be loaded falls back to the bundled texts (else: an error)'),
  bundled: z.string().default(BUNDLED_TEXTS).describe('English texts a dry run uses offline'),
  python: z.string().default('').describe("Python that loads hub datasets (the trainer's)"),
});

function localTexts(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (!file.endsWith('.jsonl')) return lines;
  return lines.flatMap((line, i) => {
    if (!line.trim()) return [];
    try {
      const text = (JSON.parse(line) as { text?: unknown }).text;
      if (typeof text !== 'string') throw new Error('no string field "text"');
      return [text];
    } catch (error) {
      throw new DataError(`expected a JSON object with a string "text": ${(error as Error).message}`, {
        file,
        line: i + 1,
      });
    }
  });
}

/**
 * English texts for the retention eval (perplexity), as examples whose whole text is scored:
 * WikiText-2's raw validation lines of at least 8 characters by default, the first max_samples.
 * In a dry run a dataset that cannot be loaded falls back to the bundled texts, said in one line.
 */
export default defineSource({
  type: 'english-texts',
  kind: 'source',
  description: 'English texts (WikiText-2 raw validation, a hub id or a local file) for the perplexity eval.',
  options,
  stats: z.object({ texts: z.number(), dataset: z.string() }),
  create(ctx) {
    const o = ctx.options;
    async function* lines(): AsyncGenerator<string> {
      if (existsSync(o.dataset) && statSync(o.dataset).isFile()) {
        ctx.stats.dataset = o.dataset;
        return yield* localTexts(o.dataset);
      }
      const dataset = KNOWN_TEXTS[o.dataset] ?? { id: o.dataset, split: 'validation' };
      ctx.stats.dataset = dataset.id;
      try {
        for await (const row of hubRows(await findPython(o.python), dataset, 0, o.cache_dir, ctx.signal)) {
          if (typeof row.text !== 'string') throw new DataError(`${dataset.id}: expected a string column "text"`);
          yield row.text;
        }
      } catch (error) {
        if (!(error instanceof HubUnavailable)) throw error;
        if (!o.dry_run)
          throw new DataError(
            `English eval dataset ${o.dataset} (${dataset.id}) could not be loaded: ${error.message}; connect to ` +
              'the hub, or set [train.eval] english_eval_dataset to a local .txt or .jsonl file',
          );
        ctx.progress.warn(
          `English eval: ${o.dataset} (${dataset.id}) could not be loaded (${error.message}); dry run: ` +
            `using the English texts written for this project (${path.relative(repoRoot, o.bundled)}) instead`,
        );
        ctx.stats.dataset = o.bundled;
        yield* localTexts(o.bundled);
      }
    }
    async function* texts() {
      const kept: FormattedExample[] = [];
      for await (const line of lines()) {
        const text = line.trim();
        if (text.length < o.min_chars) continue;
        kept.push({ key: `english:${kept.length}`, prompt: '', completion: text, group: 'english' });
        if (kept.length >= o.max_samples) break;
      }
      ctx.stats.texts = kept.length;
      for (let i = 0; i < kept.length; i += ctx.pipeline.batchSize) yield kept.slice(i, i + ctx.pipeline.batchSize);
    }
    return fromAsync(texts(), (fn) => ctx.onClose(fn));
  },
});
