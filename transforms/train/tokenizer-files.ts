import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../engine/errors.ts';

/**
 * Finds the folder holding the base model's tokenizer.json: the configured tokenizer path, the
 * model path itself when it is local, or the model's snapshot in the Hugging Face cache. The
 * TypeScript side never downloads; both sides must read the very same files.
 */
export function resolveTokenizerDir(tokenizerPath: string, baseModel: string): string {
  if (tokenizerPath) {
    const dir =
      existsSync(tokenizerPath) && statSync(tokenizerPath).isFile() ? path.dirname(tokenizerPath) : tokenizerPath;
    if (!existsSync(path.join(dir, 'tokenizer.json')))
      throw new ConfigError(
        `tokenizer_path ${tokenizerPath}: no tokenizer.json there; ` +
          `expected a folder with tokenizer.json and tokenizer_config.json`,
      );
    return dir;
  }
  if (existsSync(path.join(baseModel, 'tokenizer.json'))) return baseModel;
  const cached = cachedSnapshot(baseModel);
  if (cached) return cached;
  throw new ConfigError(
    `no local tokenizer for ${baseModel}: set tokenizer_path to ` +
      `a folder with its tokenizer.json and tokenizer_config.json, ` +
      `or fetch them once with 'huggingface-cli download ${baseModel} tokenizer.json tokenizer_config.json'`,
  );
}

function hubCacheDir(): string {
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  return path.join(process.env.HF_HOME ?? path.join(os.homedir(), '.cache', 'huggingface'), 'hub');
}

function cachedSnapshot(model: string): string | undefined {
  const repo = path.join(hubCacheDir(), `models--${model.replaceAll('/', '--')}`);
  const snapshots = path.join(repo, 'snapshots');
  if (!existsSync(snapshots)) return undefined;
  const ref = path.join(repo, 'refs', 'main');
  const preferred = existsSync(ref) ? [readFileSync(ref, 'utf8').trim()] : [];
  for (const name of [...preferred, ...readdirSync(snapshots).sort()]) {
    const dir = path.join(snapshots, name);
    if (existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  }
  return undefined;
}

export interface TokenizerSettings {
  /** The Jinja chat template, when the model has one. */
  chatTemplate?: string;
  /** The token that ends an assistant turn; the model must learn to emit it. */
  eosToken: string;
  /** Fills the tail of a packed sequence; never scored. */
  padToken: string;
  bosToken: string;
}

type TokenValue = string | { content?: string } | null | undefined;
const tokenText = (value: TokenValue): string | undefined =>
  typeof value === 'string' ? value : (value?.content ?? undefined);

/**
 * Chat template and special tokens from tokenizer_config.json (and chat_template.jinja, where newer models keep it).
 */
export function readTokenizerSettings(dir: string): TokenizerSettings {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!existsSync(file))
    throw new ConfigError(`${file} does not exist: the chat template and end-of-turn token are read from it`);
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const eosToken = tokenText(config.eos_token as TokenValue);
  if (!eosToken) throw new ConfigError(`${file}: no eos_token, so the end of an assistant turn is unknown`);
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  let chatTemplate: string | undefined;
  if (existsSync(jinjaFile)) chatTemplate = readFileSync(jinjaFile, 'utf8');
  else if (typeof config.chat_template === 'string') chatTemplate = config.chat_template;
  else if (Array.isArray(config.chat_template)) {
    const named = config.chat_template as { name?: string; template?: string }[];
    chatTemplate = (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return {
    chatTemplate,
    eosToken,
    padToken: tokenText(config.pad_token as TokenValue) ?? eosToken,
    bosToken: tokenText(config.bos_token as TokenValue) ?? '',
  };
}

export interface AddedTokens {
  /** In semantic_vocab.json order: the special tokens, then every level token. */
  tokens: string[];
  /** How many leading tokens are added as special tokens (the rest are plain added tokens). */
  specialCount: number;
}

/** What the trainer worker adds (trainer/PROTOCOL.md, HELLO): 6 special tokens, then 8 levels of 2,048 codes. */
export const SPECIAL_TOKEN_COUNT = 6;
export const LEVEL_TOKEN_COUNT = 8 * 2048;
const LEVEL_TOKEN = /^<L[1-8]_\d+>$/;
const EXPECTED =
  `expected ${SPECIAL_TOKEN_COUNT + LEVEL_TOKEN_COUNT}: the ${SPECIAL_TOKEN_COUNT} special_tokens, ` +
  `then the ${LEVEL_TOKEN_COUNT} level tokens <L1_0>…<L8_2047>`;

/**
 * The tokens to add to the base tokenizer; the worker adds the same list in the same order. A
 * vocabulary the worker would refuse at its handshake is refused here, naming the file, so
 * validation catches it before anything runs.
 */
export function readAddedTokens(file: string): AddedTokens {
  let vocab: { tokens?: unknown; special_tokens?: unknown };
  try {
    vocab = JSON.parse(readFileSync(file, 'utf8')) as typeof vocab;
  } catch (error) {
    throw new ConfigError(`cannot read semantic vocabulary ${file}: ${(error as Error).message.split('\n')[0]}`);
  }
  const tokens = vocab.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === 'string' && t.length > 0))
    throw new ConfigError(`${file}: expected "tokens": a non-empty list of token strings`);
  const specials = Array.isArray(vocab.special_tokens) ? (vocab.special_tokens as unknown[]) : [];
  if (specials.length !== SPECIAL_TOKEN_COUNT)
    throw new ConfigError(`${file}: "special_tokens" has ${specials.length} tokens, expected ${SPECIAL_TOKEN_COUNT}`);
  if (specials.some((t, i) => tokens[i] !== t))
    throw new ConfigError(`${file}: "tokens" must start with the special_tokens, in the same order`);
  if (tokens.length !== SPECIAL_TOKEN_COUNT + LEVEL_TOKEN_COUNT)
    throw new ConfigError(`${file}: "tokens" has ${tokens.length} tokens, ${EXPECTED}`);
  const notLevel = tokens.slice(SPECIAL_TOKEN_COUNT).find((t: string) => !LEVEL_TOKEN.test(t));
  if (notLevel !== undefined)
    throw new ConfigError(`${file}: "tokens" has ${JSON.stringify(notLevel)} where a level token <Lk_c> belongs`);
  if (new Set(tokens).size !== tokens.length) throw new ConfigError(`${file}: "tokens" has duplicates`);
  return { tokens: tokens as string[], specialCount: specials.length };
}
