import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { repoRoot, runCli, type CliResult } from '../helpers/cli.ts';
import { trainArgs, trainWorkspace } from './train-cli.ts';

const SECRET = 'hf_trainTestSecret987';
const { dir, prep } = trainWorkspace();
const runDir = path.join(dir, 'out', 'dry_run');
let python: string;
let run: CliResult;

before(async () => {
  python = await findPython('');
  run = await runCli(
    trainArgs(prep, path.join(dir, 'out'), { eval_every_steps: 8, checkpoint_every_steps: 8, hf_token: SECRET }),
    {
      env: { ANIMIND_PYTHON: python },
    },
  );
});

const stepLosses = () =>
  [...run.stderr.matchAll(/phase1_linking step (\d+)\/24: loss ([\d.]+)/g)].map((m) => Number(m[2]));

test('a dry run through the CLI trains phase 1 for 24 steps, the loss going down, then phase 2', () => {
  assert.equal(run.code, 0, run.stderr.slice(-3000));
  const losses = stepLosses();
  assert.equal(losses.length, 24, run.stderr.slice(-3000));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // The general rows (15% of the phase) are varied text, so the fall is smaller than on prep rows alone.
  assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)) - 0.5, `losses: ${losses.join(', ')}`);
  assert.match(run.stderr, /phase1_linking eval at step 24: held-out loss/);
  assert.match(run.stderr, /phase1_linking English perplexity at step 0: [\d,.]+ \(before training/);
  assert.match(run.stderr, /phase phase2_reasoning: \d+ optimizer steps/);
  assert.match(run.stderr, /phase2_reasoning step \d+\/\d+: loss/);
});

test('every output exists, the summary matches the run and no secret was written', () => {
  for (const name of [
    'final_model',
    'tokenizer/tokenizer.json',
    'train_run_summary.json',
    'train_config_snapshot.json',
    'phase1_linking/checkpoint-24',
    'phase1_linking/best_model',
    'phase2_reasoning/best_model',
  ])
    assert.ok(existsSync(path.join(runDir, name)), `missing ${name}`);
  const summary = JSON.parse(readFileSync(path.join(runDir, 'train_run_summary.json'), 'utf8'));
  const [phase1, phase2] = summary.phases;
  assert.deepEqual(
    summary.phases.map((p: { name: string }) => p.name),
    ['phase1_linking', 'phase2_reasoning'],
  );
  assert.equal(phase1.steps_done, 24);
  assert.equal(phase1.step_losses.length, 24);
  assert.deepEqual(
    phase1.evals.map((e: { step: number }) => e.step),
    [8, 16, 24],
  );
  // English perplexity before training, then with every eval; token-weighted over the same texts each time.
  const english = phase1.english_evals;
  assert.deepEqual(
    english.map((e: { step: number }) => e.step),
    [0, 8, 16, 24],
  );
  assert.ok(
    english.every((e: { perplexity: number; tokens: number }) => e.perplexity > 1 && e.tokens === english[0].tokens),
  );
  assert.ok(phase2.english_evals.length > 0 && phase2.steps_done > 0);
  assert.deepEqual(Object.keys(phase1.rows.train).sort(), ['A', 'B', 'C', 'instructions.jsonl']);
  assert.ok(phase1.input_tokens > 0 && phase1.tokens_per_s > 0 && phase1.wall_time_s > 0);
  const tokens = summary.token_extension;
  assert.equal(tokens.added_tokens, 16390);
  assert.equal(tokens.embedding_rows % 64, 0);
  assert.ok(tokens.trained_rows >= 16390 && tokens.embedding_rows >= tokens.base_tokens + 16390);
  const snapshot = readFileSync(path.join(runDir, 'train_config_snapshot.json'), 'utf8');
  assert.equal(JSON.parse(snapshot).config.max_seq_len, 256);
  for (const text of [snapshot, readFileSync(path.join(runDir, 'train_run_summary.json'), 'utf8'), run.stderr])
    assert.ok(!text.includes(SECRET));
});

test('the trained model and tokenizer load back with the worker’s load_trained', () => {
  const script = `
import json, sys, torch
from animind_trainer.outputs import load_trained
model, tokenizer = load_trained(sys.argv[1])
ids = tokenizer("<anime_start><L1_5><L8_2047>", add_special_tokens=False)["input_ids"]
with torch.no_grad():
    logits = model(input_ids=torch.tensor([ids])).logits
print(json.dumps({"ids": ids, "vocab": len(tokenizer), "logits": list(logits.shape)}))`;
  const result = spawnSync(python, ['-c', script, runDir], {
    env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'trainer') },
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  const loaded = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
  assert.equal(loaded.ids.length, 3);
  // The embedding is resized to the tokenizer rounded up to a multiple of 64 rows.
  assert.deepEqual(loaded.logits, [1, 3, Math.ceil(loaded.vocab / 64) * 64]);
});
