import path from 'node:path';
import type { Tokenizer } from 'tokenizers';
import { ConfigError } from '../../engine/errors.ts';
import type { AddedTokens } from './tokenizer-files.ts';

/** The base tokenizer extended with the semantic tokens, as the worker extends its own copy. */
export interface TrainTokenizer {
  readonly dir: string;
  /** Id of each added token, in the order they were added. */
  readonly addedIds: readonly number[];
  /** Id of a token that must encode to exactly one id (end of turn, padding). */
  singleId(token: string): Promise<number>;
  /** Token ids of each text, without any special tokens the tokenizer would wrap around it. */
  encode(texts: string[]): Promise<Int32Array[]>;
}

const loaded = new Map<string, Promise<TrainTokenizer>>();

/**
 * Loads `<dir>/tokenizer.json` and adds the tokens: specials as special tokens, the rest as plain
 * added tokens, the same calls in the same order as the worker, so ids are assigned identically.
 * Shared per (dir, token list) because the tokenize node and the trainer sink both need it.
 */
export function loadTrainTokenizer(dir: string, added: AddedTokens): Promise<TrainTokenizer> {
  const key = `${path.resolve(dir)}\u0000${added.specialCount}\u0000${added.tokens.length}\u0000${added.tokens.at(-1)}`;
  let promise = loaded.get(key);
  if (!promise) {
    promise = build(dir, added);
    loaded.set(key, promise);
    promise.catch(() => loaded.delete(key));
  }
  return promise;
}

/**
 * The native binding, loaded by the first node that needs it: every built-in node is registered
 * at startup, and a prep run has no use for a library that takes ~10 MB of RSS to load.
 */
export const tokenizersBinding = async (): Promise<typeof Tokenizer> => (await import('tokenizers')).Tokenizer;

async function build(dir: string, added: AddedTokens): Promise<TrainTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  const Binding = await tokenizersBinding();
  let tokenizer: Tokenizer;
  try {
    tokenizer = Binding.fromFile(file);
  } catch (error) {
    throw new ConfigError(`cannot load tokenizer ${file}: ${(error as Error).message.split('\n')[0]}`);
  }
  tokenizer.addSpecialTokens(added.tokens.slice(0, added.specialCount));
  tokenizer.addTokens(added.tokens.slice(added.specialCount));
  const encode = async (texts: string[]) =>
    (await tokenizer.encodeBatch(texts, { addSpecialTokens: false })).map((e) => Int32Array.from(e.getIds()));

  const encoded = await encode(added.tokens);
  const addedIds = encoded.map((ids, i) => {
    if (ids.length !== 1)
      throw new ConfigError(`added token ${added.tokens[i]} does not encode to a single id in ${file}`);
    return ids[0]!;
  });
  return {
    dir,
    addedIds,
    async singleId(token) {
      const [ids] = await encode([token]);
      if (ids?.length !== 1) throw new ConfigError(`token ${token} does not encode to a single id with ${file}`);
      return ids[0]!;
    },
    encode,
  };
}
