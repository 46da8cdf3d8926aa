import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { readLineBatches } from '../../engine/line-reader.ts';
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

const options = z.strictObject({
  path: inputPath('semantic_ids.jsonl: one {anime_id, semantic_id, …} object per line'),
});

const optionalText = (value: unknown): string | null =>
  typeof value === 'string' ? value : value == null ? null : String(value);

/** Checks one parsed line; a problem is reported with the file and line it came from. */
export function toSemanticIdRow(payload: unknown, fail: (message: string) => never): SemanticIdRow {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) fail('expected a JSON object');
  const record = payload as Record<string, unknown>;
  const rawId = record.anime_id;
  const animeId = typeof rawId === 'string' && /^\d+$/.test(rawId.trim()) ? Number(rawId) : rawId;
  if (typeof animeId !== 'number' || !Number.isSafeInteger(animeId))
    fail(`anime_id: expected an integer, got ${JSON.stringify(rawId)}`);
  const semanticId = typeof record.semantic_id === 'string' ? record.semantic_id.trim() : '';
  if (!semanticId) fail(`semantic_id: expected a non-empty string for anime_id ${animeId}`);
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

/** The semantic-ID artifact, checked line by line: bad JSON, missing fields and duplicate ids stop the run. */
export default defineSource({
  type: 'semantic-ids-source',
  kind: 'source',
  description: 'Reads semantic_ids.jsonl, checking anime_id, semantic_id and duplicates with file:line errors.',
  options,
  stats: rowStats,
  create(ctx) {
    const { path } = ctx.options;
    const batch_size = ctx.pipeline.batchSize;
    const counter = ctx.progress.counter('semantic ids', { unit: 'rows' });
    async function* rows() {
      const seen = new Map<number, number>();
      for await (const lines of readLineBatches(path, batch_size, ctx.signal)) {
        const batch: SemanticIdRow[] = [];
        for (const line of lines) {
          if (!line.text.trim()) continue;
          const fail = (message: string): never => {
            throw new DataError(message, { file: path, line: line.number });
          };
          let payload: unknown;
          try {
            payload = JSON.parse(line.text);
          } catch (error) {
            fail(`invalid JSON (${(error as Error).message}): expected one JSON object per line`);
          }
          const row = toSemanticIdRow(payload, fail);
          const previous = seen.get(row.anime_id);
          if (previous !== undefined) fail(`duplicate anime_id ${row.anime_id}: first seen at line ${previous}`);
          seen.set(row.anime_id, line.number);
          batch.push(row);
        }
        counter.add(batch.length);
        if (batch.length) yield batch;
      }
      ctx.stats.rows = seen.size;
      counter.done();
      if (seen.size === 0)
        throw new DataError('no semantic-ID rows: expected at least one {anime_id, semantic_id} line', { file: path });
      ctx.progress.log(`Loaded semantic map rows: ${seen.size.toLocaleString('en-US')}`);
    }
    return fromAsync(rows(), ctx.onClose);
  },
});
