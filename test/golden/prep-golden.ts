import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from '../prep/fixture-db.ts';
import { runPrep, tempDir } from '../prep/run-prep.ts';

/** The checked-in expected outputs of pipelines/prep.yaml on the test fixture. */
export const GOLDEN_DIR = fileURLToPath(new URL('./prep/', import.meta.url));
export const GOLDEN_FILES = ['llm_prep_train.jsonl', 'llm_prep_summary.json'] as const;
export const PINNED_TIME = '2026-01-01T00:00:00Z';

/**
 * Builds the fixture (30 users, so Task B and C pools are smaller than their quotas and get
 * oversampled while Task A is subsampled) and runs the real pipeline file on it; returns the out_dir.
 * No user is held out: the goldens predate held-out users and prove that shares of 0 change no byte.
 */
export async function produceGolden(batchSize: number): Promise<string> {
  process.env.ANIMIND_FIXED_TIME = PINNED_TIME;
  const fixtureDir = tempDir('golden-fixture');
  try {
    return await runPrep(buildFixture(fixtureDir, { users: 30 }), {
      target_examples: 300,
      batch_size: batchSize,
      holdout_valid: 0,
      holdout_test: 0,
    });
  } finally {
    rmSync(fixtureDir, { recursive: true, force: true });
  }
}

export const goldenPath = (name: string) => path.join(GOLDEN_DIR, name);
