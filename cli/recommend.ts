import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DataError } from '../engine/errors.ts';
import { runPythonJob } from '../sinks/eval/python-job.ts';
import { findPython } from '../sinks/trainer/python.ts';

export interface RecommendOptions {
  run: string;
  model: string;
  history?: string;
  historyFile?: string;
  semanticIds: string;
  topK: number;
  includeHistory: boolean;
  device: string;
  json: boolean;
}

interface Anime {
  anime_id: number;
  name?: string;
  english_name?: string;
  semantic_id: string;
}

interface Recommendation {
  rank: number;
  anime_id: number;
  title: string;
  semantic_id: string;
  score: number;
}

function readCatalog(file: string): Anime[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as Anime);
  } catch (error) {
    throw new ConfigError(`--semantic-ids: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The history as given: `--history 1,5,42` or a JSON file holding a list of anime ids or titles. */
function historyEntries(o: RecommendOptions): { entries: unknown[]; where: string } {
  if (o.history !== undefined && o.historyFile !== undefined)
    throw new ConfigError('give the history once: --history or --history-file');
  if (o.history !== undefined)
    return {
      entries: o.history
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      where: '--history',
    };
  if (o.historyFile === undefined) throw new ConfigError('give a history: --history 1,5,42 or --history-file FILE');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(o.historyFile, 'utf8'));
  } catch (error) {
    throw new ConfigError(`--history-file: ${(error as Error).message}`, { file: o.historyFile });
  }
  if (!Array.isArray(parsed))
    throw new ConfigError('expected a JSON list of anime ids or titles', { file: o.historyFile });
  return { entries: parsed, where: o.historyFile };
}

/** Each entry as an anime id: a known id, or a title matching one anime's name or English name (any case). */
export function resolveHistory(entries: unknown[], catalog: Anime[], where: string): number[] {
  const ids = new Set(catalog.map((a) => a.anime_id));
  const byTitle = new Map<string, number[]>();
  for (const a of catalog)
    for (const title of new Set([a.name, a.english_name].filter(Boolean).map((t) => t!.toLowerCase())))
      byTitle.set(title, [...(byTitle.get(title) ?? []), a.anime_id]);
  return entries.map((entry) => {
    const text = String(entry).trim();
    if (/^\d+$/.test(text)) {
      if (!ids.has(Number(text))) throw new ConfigError(`${where}: unknown anime id ${text}: no anime has it`);
      return Number(text);
    }
    const matches = byTitle.get(text.toLowerCase()) ?? [];
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1)
      throw new ConfigError(
        `${where}: the title "${text}" names ${matches.length} anime (${matches.join(', ')}); give its id`,
      );
    throw new ConfigError(`${where}: unknown anime "${text}": no anime id or title matches`);
  });
}

/** `animind recommend`: the top K anime a trained model gives a watch history, by trie-constrained beam search. */
export async function recommend(o: RecommendOptions): Promise<number> {
  const catalog = readCatalog(o.semanticIds);
  const { entries, where } = historyEntries(o);
  const history = resolveHistory(entries, catalog, where);
  if (!history.length) throw new ConfigError(`${where}: the history is empty`);
  const python = await findPython('');
  const work = mkdtempSync(path.join(tmpdir(), 'animind-recommend-'));
  try {
    const request = path.join(work, 'request.json');
    writeFileSync(
      request,
      JSON.stringify({
        model_dir: path.resolve(o.run),
        model_name: o.model,
        semantic_ids_path: path.resolve(o.semanticIds),
        history,
        top_k: o.topK,
        exclude_history: !o.includeHistory,
        device: o.device,
        precision: 'auto',
      }),
    );
    const events = await runPythonJob(python, 'animind_trainer.recommend.recommend', request, {
      onEvent: () => {},
      onLog: (line) => process.env.ANIMIND_DEBUG && process.stderr.write(`${line}\n`),
    });
    const items = events.find((e) => e.event === 'recommendations')?.items as Recommendation[] | undefined;
    if (!items) throw new DataError('the recommender returned no recommendations');
    process.stdout.write(o.json ? items.map((i) => `${JSON.stringify(i)}\n`).join('') : table(items));
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function table(items: Recommendation[]): string {
  const rows = [
    ['rank', 'anime_id', 'title', 'semantic_id', 'score'],
    ...items.map((i) => [String(i.rank), String(i.anime_id), i.title, i.semantic_id, i.score.toFixed(3)]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 4 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}
