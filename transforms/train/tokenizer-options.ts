import path from 'node:path';
import { z } from 'zod';
import { inputPath } from '../../engine/options.ts';
import { resolveTokenizerDir } from './tokenizer-files.ts';

/** Options every node that needs the base tokenizer takes, so they all resolve the same files. */
export const tokenizerOptions = {
  base_model: z
    .string()
    .min(1)
    .describe('model id or local path; its tokenizer is read from the Hugging Face cache unless tokenizer_path is set'),
  tokenizer_path: z
    .string()
    .default('')
    .describe(
      'folder with tokenizer.json and tokenizer_config.json, ' +
        'relative to the working directory; empty: the base model’s',
    ),
};

/** Plus the semantic vocabulary whose tokens are added to it. */
export const extendedTokenizerOptions = {
  ...tokenizerOptions,
  semantic_vocab: inputPath(
    'semantic_vocab.json: its "tokens" (6 special, then the level tokens) are added to the tokenizer',
  ),
};

/** The tokenizer folder the options name, absolute. */
export const tokenizerDir = (options: { base_model: string; tokenizer_path: string }) =>
  path.resolve(resolveTokenizerDir(options.tokenizer_path, options.base_model));
