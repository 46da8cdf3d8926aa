import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, DataError } from '../../engine/errors.ts';
import { readLineBatches, type Line } from '../../engine/line-reader.ts';
import { defineSource, rowStats } from '../../engine/node.ts';
import { inputPath } from '../../engine/options.ts';
import { fromAsync } from '../../engine/stream.ts';

export interface SemanticIdRow {
  anime_id: number;
  semantic_id: string;
  name: string | null;
  english_name: string | null;
  genres: string | null;
  tokens: string[];
  codes: number[];
}

/** Every anime's semantic ID is this many level tokens run together, `<L1_c>…<L8_c>`, level k at position k. */
export const SID_LEVELS = 8;
/** One level token: the level and the code as plain decimals (no sign, no leading zero). */
const LEVEL_TOKEN = /<L[1-9]\d*_(?:0|[1-9]\d*)>/g;
const isLevelToken = (text: string) => /^<L[1-9]\d*_(?:0|[1-9]\d*)>$/.test(text);
/** The vocabulary file a semantic-ID artifact ships with; the source looks for it beside semantic_ids.jsonl. */
export const VOCAB_FILE = 'semantic_vocab.json';

const options = z.strictObject({
  path: inputPath('semantic_ids.jsonl: one {anime_id, semantic_id, …} object per line'),
  vocabulary: inputPath(
    `semantic_vocab.json whose "tokens" hold every token an ID may use (default: the ${VOCAB_FILE} ` +
      'beside path, if there is one; with none, only the shape and order of the tokens are checked)',
  ).optional(),
});
type Options = z.output<typeof options>;

/** The tokens an ID may use, and the file they came from, for the error that names it. */
export interface Vocabulary {
  file: string;
  tokens: ReadonlySet<string>;
}

/** The vocabulary the IDs are checked against: the `vocabulary` option, else semantic_vocab.json beside `path`. */
export function vocabularyFile({ path, vocabulary }: Options): string | undefined {
  if (vocabulary) return vocabulary;
  if (path === '-') return undefined;
  const beside = join(dirname(path), VOCAB_FILE);
  return existsSync(beside) ? beside : undefined;
}

/** Reads semantic_vocab.json (`{"tokens": ["<anime_start>", …, "<L1_0>", …]}`); a bad file is a config error. */
export function readVocabulary(file: string): Vocabulary {
  let vocab: unknown;
  try {
    vocab = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ConfigError(`cannot read the semantic vocabulary: ${(error as Error).message.split('\n')[0]}`, { file });
  }
  const tokens = (vocab as { tokens?: unknown } | null)?.tokens;
  const strings = Array.isArray(tokens) ? tokens.filter((t): t is string => typeof t === 'string') : [];
  if (!strings.some(isLevelToken))
    throw new ConfigError('semantic vocabulary: expected "tokens", a list holding level tokens such as "<L1_0>"', {
      file,
    });
  return { file, tokens: new Set(strings) };
}

const optionalText = (value: unknown): string | null =>
  typeof value === 'string' ? value : value == null ? null : String(value);

const shown = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 79)}…` : text);

/**
 * Checks an ID's tokens: exactly SID_LEVELS level tokens run together, level k at position k, and
 * each in the vocabulary when there is one.
 */
function checkTokens(semanticId: string, animeId: number, fail: (message: string) => never, vocabulary?: Vocabulary) {
  const what = `semantic_id of anime_id ${animeId}`;
  const expected = `${SID_LEVELS} level tokens <L1_n>…<L${SID_LEVELS}_n>`;
  const tokens = semanticId.match(LEVEL_TOKEN) ?? [];
  if (tokens.join('') !== semanticId) fail(`${what}: expected ${expected} run together, got ${shown(semanticId)}`);
  if (tokens.length !== SID_LEVELS) fail(`${what}: expected ${expected}, got ${tokens.length}`);
  tokens.forEach((token, i) => {
    if (!token.startsWith(`<L${i + 1}_`))
      fail(`${what}: token ${i + 1} is ${token}: expected <L${i + 1}_n> (level k at position k)`);
    if (vocabulary && !vocabulary.tokens.has(token))
      fail(`${what}: token ${token} is not in the vocabulary ${vocabulary.file}`);
  });
}

/** Checks one parsed line; a problem is reported with the file and line it came from. */
export function toSemanticIdRow(
  payload: unknown,
  fail: (message: string) => never,
  vocabulary?: Vocabulary,
): SemanticIdRow {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) fail('expected a JSON object');
  const record = payload as Record<string, unknown>;
  const animeId = record.anime_id;
  if (typeof animeId !== 'number' || !Number.isSafeInteger(animeId))
    fail(
      `anime_id: expected an integer, got ${animeId === undefined ? 'nothing' : JSON.stringify(animeId)}` +
        (typeof animeId === 'string' ? ' (a string: write the number without quotes)' : ''),
    );
  const semanticId = typeof record.semantic_id === 'string' ? record.semantic_id.trim() : '';
  if (!semanticId) fail(`semantic_id: expected a non-empty string for anime_id ${animeId}`);
  checkTokens(semanticId, animeId, fail, vocabulary);
  return {
    anime_id: animeId,
    semantic_id: semanticId,
    name: optionalText(record.name),
    english_name: optionalText(record.english_name),
    genres: optionalText(record.genres),
    tokens: Array.isArray(record.tokens) ? record.tokens.map(String) : [],
    codes: Array.isArray(record.codes) ? record.codes.map(Number) : [],
  };
}

/**
 * Turns the file's lines into checked rows, remembering the line of every anime_id and every ID
 * so that a repeat of either names both lines.
 */
function lineChecker(file: string, vocabulary: Vocabulary | undefined) {
  const animeLines = new Map<number, number>();
  const idOwners = new Map<string, { animeId: number; line: number }>();
  const check = (line: Line): SemanticIdRow | undefined => {
    if (!line.text.trim()) return undefined;
    const fail = (message: string): never => {
      throw new DataError(message, { file, line: line.number });
    };
    let payload: unknown;
    try {
      payload = JSON.parse(line.text);
    } catch (error) {
      // The reader drops a byte-order mark that starts the file; one further on is most likely two files joined.
      if (line.text.startsWith('\uFEFF'))
        fail('invalid JSON: the line starts with a byte-order mark (U+FEFF), which only the file may start with');
      fail(`invalid JSON (${(error as Error).message}): expected one JSON object per line`);
    }
    const row = toSemanticIdRow(payload, fail, vocabulary);
    const previous = animeLines.get(row.anime_id);
    if (previous !== undefined) fail(`duplicate anime_id ${row.anime_id}: first seen at line ${previous}`);
    const owner = idOwners.get(row.semantic_id);
    if (owner)
      fail(
        `duplicate semantic_id ${row.semantic_id}: anime_id ${row.anime_id} shares it with ` +
          `anime_id ${owner.animeId} at line ${owner.line}; each anime needs its own ID`,
      );
    animeLines.set(row.anime_id, line.number);
    idOwners.set(row.semantic_id, { animeId: row.anime_id, line: line.number });
    return row;
  };
  return { check, rows: () => animeLines.size };
}

/**
 * The semantic-ID artifact, checked line by line: bad JSON, missing fields, malformed IDs, tokens
 * outside the vocabulary and repeated anime or IDs stop the run.
 */
export default defineSource({
  type: 'semantic-ids-source',
  kind: 'source',
  description:
    'Reads semantic_ids.jsonl, checking anime_id, each 8-token semantic_id (against ' +
    'semantic_vocab.json when there is one) and repeats, with file:line errors.',
  options,
  stats: rowStats,
  // semantic_vocab.json found beside the IDs is an input too: checked before the run and hashed in the manifest.
  files: (opts) => {
    const file = opts.vocabulary ? undefined : vocabularyFile(opts);
    return file ? [{ option: 'vocabulary', path: file, role: 'input' }] : [];
  },
  check: (opts) => {
    const file = vocabularyFile(opts);
    try {
      if (file) readVocabulary(file);
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return [{ option: opts.vocabulary ? 'vocabulary' : 'path', message: error.oneLine() }];
    }
  },
  create(ctx) {
    const { path } = ctx.options;
    const batch_size = ctx.pipeline.batchSize;
    const counter = ctx.progress.counter('semantic ids', { unit: 'rows' });
    async function* rows() {
      const file = vocabularyFile(ctx.options);
      const lines = lineChecker(path, file ? readVocabulary(file) : undefined);
      for await (const batch of readLineBatches(path, batch_size, ctx.signal)) {
        const out: SemanticIdRow[] = [];
        for (const line of batch) {
          const row = lines.check(line);
          if (row) out.push(row);
        }
        counter.add(out.length);
        if (out.length) yield out;
      }
      ctx.stats.rows = lines.rows();
      counter.done();
      if (lines.rows() === 0)
        throw new DataError('no semantic-ID rows: expected at least one {anime_id, semantic_id} line', { file: path });
      ctx.progress.log(`Loaded semantic map rows: ${lines.rows().toLocaleString('en-US')}`);
    }
    return fromAsync(rows(), ctx.onClose);
  },
});
