import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineSource, type NodeContext } from '../../engine/node.ts';
import { fromAsync } from '../../engine/stream.ts';
import { findPython, repoRoot } from '../../sinks/trainer/python.ts';
import { flag, int, num, stringList } from '../../transforms/train/option-types.ts';
import { hubRows, HubUnavailable, type HubDataset } from './hub-rows.ts';
import { toExchange } from './instruction-rows.ts';

/** The original tool's source names and the hub datasets they stand for. */
export const KNOWN_SOURCES: Readonly<Record<string, HubDataset>> = {
  SlimOrca: { id: 'Open-Orca/SlimOrca-Dedup', split: 'train' },
  OpenHermes: { id: 'teknium/OpenHermes-2.5', split: 'train' },
};

export const BUNDLED_INSTRUCTIONS = path.join(repoRoot, 'fixtures/general-mix/instructions.jsonl');

const options = z.strictObject({
  sources: stringList(Object.keys(KNOWN_SOURCES)).describe(
    `each a known name (${Object.keys(KNOWN_SOURCES).join(', ')}), a hub dataset id, ` +
      'a dataset folder, or a local .jsonl/.json file (relative to the working directory)',
  ),
  max_rows_per_source: int().positive().default(60000).describe('rows read from each source (its first ones)'),
  cache_dir: z.string().default('').describe("the datasets cache; empty: Hugging Face's default"),
  ratio: num().min(0).lt(1).default(0.15).describe('share of general rows in each phase; 0 reads no source'),
  dry_run: flag(true).describe('a source that cannot be loaded falls back to the bundled rows (else: an error)'),
  bundled: z.string().default(BUNDLED_INSTRUCTIONS).describe('instruction rows a dry run uses offline'),
  python: z.string().default('').describe("Python that loads hub datasets (the trainer's)"),
});

type Row = Record<string, unknown>;
type Context = NodeContext<z.output<typeof options>, typeof generalStats>;

const generalStats = z.object({ rows: z.record(z.string(), z.number()), fell_back: z.boolean() });

/** Rows of a local .jsonl or .json file (an array, or an object holding one under `data`). */
function readLocal(file: string, maxRows: number): Row[] {
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.json')) {
    const rows: Row[] = [];
    for (const [i, line] of text.split('\n').entries()) {
      if (rows.length >= maxRows) break;
      if (!line.trim()) continue;
      try {
        rows.push(JSON.parse(line) as Row);
      } catch (error) {
        throw new DataError(`invalid JSON (${(error as Error).message}): expected one JSON object per line`, {
          file,
          line: i + 1,
        });
      }
    }
    return rows;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataError(`invalid JSON (${(error as Error).message})`, { file });
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { data?: unknown })?.data;
  if (!Array.isArray(list)) throw new DataError('expected a JSON array of rows (or {"data": [...]})', { file });
  return (list as Row[]).slice(0, maxRows);
}

const isLocalFile = (source: string) => existsSync(source) && statSync(source).isFile();

/**
 * The general instruction rows mixed into every phase (SlimOrca-Dedup and OpenHermes-2.5 by
 * default), each reduced to {system, input, output} and labelled with its source (`task`). Hub
 * datasets load through the trainer's Python and `datasets`, so the HF cache and HF_HUB_OFFLINE
 * apply; in a dry run a source that cannot be loaded is replaced by the bundled rows, said in
 * one line.
 */
export default defineSource({
  type: 'general-instructions',
  kind: 'source',
  description:
    'General instruction rows (SlimOrca-Dedup, OpenHermes-2.5, a hub id or a local file) ' +
    'as {example_id, task: source, system, input, output}; bundled rows offline in a dry run.',
  options,
  stats: generalStats,
  create(ctx) {
    const counts: Record<string, number> = {};
    Object.assign(ctx.stats, { rows: counts, fell_back: false });
    return fromAsync(generalRows(ctx, counts), (fn) => ctx.onClose(fn));
  },
});

/** Rows of one source as {example_id, task: source, system, input, output}, in batches. */
async function* exchanges(
  ctx: Context,
  counts: Record<string, number>,
  name: string,
  rows: Iterable<Row> | AsyncIterable<Row>,
  where: string,
): AsyncGenerator<Row[]> {
  let index = 0;
  const batch: Row[] = [];
  for await (const row of rows) {
    const exchange = toExchange(row);
    if (!exchange)
      throw new DataError(
        `${where} row ${index + 1}: expected instruction/output, prompt/response, conversations ` +
          `(from/value) or messages (role/content); its fields are ${Object.keys(row).join(', ') || 'none'}`,
      );
    batch.push({ example_id: `${name}:${index++}`, task: name, ...exchange });
    if (batch.length >= ctx.pipeline.batchSize) yield batch.splice(0);
  }
  counts[name] = index;
  if (batch.length) yield batch;
}

async function* generalRows(ctx: Context, counts: Record<string, number>): AsyncGenerator<Row[]> {
  const o = ctx.options;
  if (o.ratio === 0) return;
  let bundledUsed = false;
  for (const source of o.sources) {
    if (isLocalFile(source)) {
      yield* exchanges(ctx, counts, path.basename(source), readLocal(source, o.max_rows_per_source), source);
      continue;
    }
    const dataset = KNOWN_SOURCES[source] ?? { id: source, split: 'train' };
    const named = `${source} (${dataset.id})`;
    try {
      const rows = hubRows(await findPython(o.python), dataset, o.max_rows_per_source, o.cache_dir, ctx.signal);
      yield* exchanges(ctx, counts, source, rows, named);
    } catch (error) {
      if (!(error instanceof HubUnavailable)) throw error;
      if (!o.dry_run)
        throw new DataError(
          `general mix source ${named} could not be loaded: ${error.message}; connect to the hub (and set ` +
            'HF_TOKEN where needed), list a local file in [train.general_mix] sources, or set ratio = 0',
        );
      ctx.stats.fell_back = true;
      if (bundledUsed) {
        ctx.progress.warn(`general mix: ${named} could not be loaded either; dry run: the bundled rows stand in`);
        continue;
      }
      bundledUsed = true;
      const bundled = readLocal(o.bundled, o.max_rows_per_source);
      ctx.progress.warn(
        `general mix: ${named} could not be loaded (${error.message}); dry run: using the ${bundled.length} ` +
          `instruction rows written for this project (${path.relative(repoRoot, o.bundled)}) instead`,
      );
      yield* exchanges(ctx, counts, 'bundled', bundled, o.bundled);
    }
  }
}
