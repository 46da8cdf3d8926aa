import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';
import { trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace(120);

function writeConfig(extra = ''): string {
  const file = path.join(dir, 'conf', 'animind.toml');
  mkdirSync(path.dirname(file), { recursive: true });
  const keys = [
    `train_jsonl = "${prep}"`,
    'out_dir = "../out"',
    'device = "cpu"',
    'precision = "auto"',
    'max_seq_len = 256',
    'per_device_train_batch_size = 2',
    'gradient_accumulation_steps = 2',
    'dry_run_max_steps = 4',
    extra,
  ];
  const vocab = path.join(repoRoot, 'fixtures/semantic_vocab.json');
  writeFileSync(file, `[train]\n${keys.join('\n')}\n\n[train.tokens]\nsemantic_vocab_path = "${vocab}"\n`);
  return file;
}

test(
  'animind run --phase train: a dry run from the [train] section, with local stand-ins for a model that is not cached',
  { timeout: 120_000 },
  async () => {
    // An empty Hugging Face cache: the dry-run model's tokenizer is not local, so nothing may be fetched.
    const env = {
      ANIMIND_PYTHON: await findPython(''),
      HF_HUB_CACHE: path.join(dir, 'empty-hf-cache'),
      HF_HUB_OFFLINE: '1',
    };
    const run = await runCli(['run', '--phase', 'train', '--config', writeConfig(), '--progress', 'lines'], { env });
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    assert.match(
      run.stderr,
      /dry run: no local tokenizer for sshleifer\/tiny-gpt2; using the bundled Qwen tokenizer and a tiny local model/,
    );
    const runDir = path.join(dir, 'out', 'dry_run');
    const summary = JSON.parse(readFileSync(path.join(runDir, 'train_run_summary.json'), 'utf8'));
    assert.equal(summary.phases[0].name, 'phase1_linking');
    assert.equal(summary.phases[0].steps_done, 4);
    assert.ok(existsSync(path.join(runDir, 'final_model')));

    const again = await runCli(['run', '--phase', 'train', '--config', writeConfig('rebuild = false')], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already holds a trained model \(rebuild = false\); nothing to do/);
  },
);
