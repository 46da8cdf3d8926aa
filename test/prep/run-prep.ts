import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import type { Fixture } from './fixture-db.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PREP_YAML = path.join(ROOT, 'pipelines/prep.yaml');

export const tempDir = (label: string) => mkdtempSync(path.join(tmpdir(), `animind-${label}-`));

/**
 * Runs pipelines/prep.yaml in-process on a fixture, with `--set`-style overrides (`batch_size` is
 * the engine's, as `--batch-size` sets it); returns the out_dir.
 */
export async function runPrep(fixture: Fixture, overrides: Record<string, string | number> = {}): Promise<string> {
  const outDir = tempDir('prep-out');
  const { batch_size: batchSize, ...rest } = overrides;
  const params = { database: fixture.database, semantic_ids: fixture.semanticIds, out_dir: outDir, ...rest };
  const plan = await loadTestPlan(PREP_YAML, params, batchSize === undefined ? undefined : Number(batchSize));
  await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  return outDir;
}

/** Runs a prep pipeline file in-process on a fixture into `outDir`, `--set`-style (3000 examples unless given). */
export async function runPrepPipeline(
  pipeline: string,
  fixture: Fixture,
  outDir: string,
  params: Record<string, string> = {},
): Promise<string> {
  const plan = await loadTestPlan(pipeline, {
    database: fixture.database,
    semantic_ids: fixture.semanticIds,
    out_dir: outDir,
    target_examples: '3000',
    ...params,
  });
  await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  return outDir;
}

export const readOutput = (outDir: string, name: string) => readFileSync(path.join(outDir, name), 'utf8');

export function readRows(outDir: string): Record<string, unknown>[] {
  return readOutput(outDir, 'llm_prep_train.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
