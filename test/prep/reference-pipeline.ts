import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { PREP_YAML } from './run-prep.ts';

/**
 * pipelines/prep.yaml with its user pass (the `prep-user-histories` node) replaced by the three
 * generic nodes it stands for: sqlite-source on user_anime, prep-group-users, prep-history.
 * Written to `dir`, built from the real file so the two pipelines never drift apart.
 */
export function writeReferencePipeline(dir: string): string {
  const doc = parseDocument(readFileSync(PREP_YAML, 'utf8'));
  const nodes = doc.get('nodes') as YAMLMap;
  const at = nodes.items.findIndex((pair) => String((pair as Pair<{ value: string }>).key.value) === 'history');
  const fast = (nodes.items[at]!.value as YAMLMap).toJSON() as Record<string, unknown>;
  if (fast.use !== 'prep-user-histories')
    throw new Error(`prep.yaml: expected node 'history' to use prep-user-histories, found ${String(fast.use)}`);
  const stage = fast.stage;
  const generic = {
    user_anime: {
      use: 'sqlite-source',
      stage,
      database: fast.database,
      table: 'user_anime',
      columns: ['user_id', 'anime_id', 'score', 'watching_status', 'watched_episodes', 'scraped_at'],
      order_by: ['user_id', 'anime_id'],
    },
    users: { use: 'prep-group-users', stage, from: 'user_anime' },
    history: {
      use: 'prep-history',
      stage,
      from: { users: 'users', catalog: 'catalog' },
      task_b_allowed_statuses: fast.task_b_allowed_statuses,
      task_b_min_history: fast.task_b_min_history,
      task_b_max_history: fast.task_b_max_history,
    },
  };
  nodes.items.splice(at, 1, ...Object.entries(generic).map(([id, body]) => doc.createPair(id, body) as Pair));
  const summary = nodes.get('summary');
  if (!isMap(summary)) throw new Error("prep.yaml: expected a 'summary' node");
  summary.set('stats_from', { user_anime: 'user_anime', users: 'users' });
  const file = path.join(dir, 'prep-reference.yaml');
  writeFileSync(file, doc.toString());
  return file;
}
