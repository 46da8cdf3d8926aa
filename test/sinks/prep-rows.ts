import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { createReporter } from '../../engine/progress.ts';
import { runPlan, type RunResult } from '../../engine/runtime.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';
import { loadTestPlan } from '../helpers/plan.ts';

export type { PrepRow };

/** Rows shaped like the prep output, cycling through the three tasks (A rows have no user). */
export function prepRows(count: number): PrepRow[] {
  return Array.from({ length: count }, (_, i) => {
    const task = (['A', 'B', 'C'] as const)[i % 3]!;
    const id = `prep_${String(i + 1).padStart(9, '0')}`;
    if (task === 'A')
      return {
        example_id: id,
        task,
        input: `The anime <L1_${i % 7}> has the title`,
        output: `Title “${i}” — 東京`,
        anime_ids: [i + 1],
        user_id: null,
        meta: { template_id: 'sid_to_title' },
      };
    if (task === 'B')
      return {
        example_id: id,
        task,
        input: `A user watched <anime_start>[MASK]<anime_end>\tthen\nwatched`,
        output: `<L1_${i % 5}>`,
        anime_ids: Array.from({ length: 1 + (i % 30) }, (_, k) => 40_000 + k * i),
        user_id: 2 ** 40 + i,
        meta: {
          template_id: 'watch_sequence_mask',
          mask_mode: i % 2 ? 'last' : 'random',
          mask_index: i % 4,
          history_len: 1 + (i % 30),
        },
      };
    return {
      example_id: id,
      task,
      input: `<L1_1> is interesting to fans of`,
      output: 'action and drama',
      anime_ids: [7, 8, 9],
      user_id: i,
      meta: { template_id: 'reasoning_single', kind: 'single' },
    };
  });
}

const root = mkdtempSync(path.join(tmpdir(), 'animind-sinks-'));
after(() => rmSync(root, { recursive: true, force: true }));

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(root, `${prefix}-`));
}

export function writeJsonl(file: string, rows: readonly unknown[]): void {
  writeFileSync(file, rows.map((row) => JSON.stringify(row) + '\n').join(''));
}

/**
 * Writes a pipeline file into `dir` and runs it in-process without
 * progress output (`config` as `animind run` passes its TOML section).
 */
export async function runYaml(
  dir: string,
  yaml: string,
  overrides: Record<string, string> = {},
  config?: Record<string, unknown>,
): Promise<RunResult> {
  const file = path.join(dir, 'pipeline.yaml');
  writeFileSync(file, yaml);
  const plan = await loadTestPlan(file, overrides);
  return runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }), ...(config ? { config } : {}) });
}
