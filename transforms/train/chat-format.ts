import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port, rowStats } from '../../engine/node.ts';
import { ChatFormatter } from './chat-template.ts';
import { readTokenizerSettings } from './tokenizer-files.ts';
import { tokenizerDir, tokenizerOptions } from './tokenizer-options.ts';
import type { FormattedExample } from './types.ts';

type Row = Record<string, unknown>;

/** Renders each prep row as the model's own chat exchange: user = input, assistant = output. */
export default defineTransform({
  type: 'chat-format',
  kind: 'transform',
  description:
    "Renders rows with the model's chat template into a masked prompt (the inference prompt, " +
    'add_generation_prompt=True) and a learned completion (the rest of the turn, through end-of-turn).',
  options: z.strictObject({
    ...tokenizerOptions,
    input_field: z.string().min(1).default('input').describe('field holding the user turn'),
    output_field: z.string().min(1).default('output').describe('field holding the assistant turn'),
    key_field: z
      .string()
      .min(1)
      .default('example_id')
      .describe('field identifying the row (eval hold-out and sampling key on it)'),
    system_field: z
      .string()
      .min(1)
      .default('system')
      .describe("field holding a system message, used where a row's is a non-empty string"),
    group_field: z
      .string()
      .min(1)
      .default('task')
      .describe("field naming the row's group (task or source) for the per-phase counts"),
  }),
  inputs: { in: port<Row>() },
  stats: rowStats,
  check(options) {
    try {
      readTokenizerSettings(tokenizerDir(options));
      return [];
    } catch (error) {
      return [{ option: options.tokenizer_path ? 'tokenizer_path' : 'base_model', message: (error as Error).message }];
    }
  },
  create(ctx, inputs) {
    const { input_field, output_field, key_field, system_field, group_field } = ctx.options;
    const formatter = new ChatFormatter(readTokenizerSettings(tokenizerDir(ctx.options)));
    if (!formatter.hasTemplate)
      ctx.progress.warn('the tokenizer has no chat template: prompts are the plain input followed by a newline');
    let seen = 0;
    return inputs.ports.in.map((batch) =>
      batch.map((row): FormattedExample => {
        seen++;
        const key = row[key_field] === undefined || row[key_field] === null ? `row ${seen}` : String(row[key_field]);
        const input = row[input_field];
        const output = row[output_field];
        if (typeof input !== 'string' || typeof output !== 'string')
          throw new DataError(`${key_field} ${key}: expected string fields '${input_field}' and '${output_field}'`);
        ctx.stats.rows = seen;
        try {
          const system = typeof row[system_field] === 'string' ? row[system_field] : undefined;
          const group = row[group_field];
          return {
            key,
            ...formatter.format(input, output, system || undefined),
            ...(typeof group === 'string' ? { group } : {}),
          };
        } catch (error) {
          throw new DataError(`${key_field} ${key}: ${(error as Error).message}`);
        }
      }),
    );
  },
});
