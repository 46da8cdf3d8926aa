/**
 * Train never leaves partial output: the worker writes into a staging folder beside the run
 * folder, and only a finished run is renamed into place. However a re-run into a finished run's
 * folder ends early (SIGTERM, a killed worker, a full disk, a bad vocabulary, no rows), the
 * finished run stays byte for byte as it was and nothing new appears beside it; only checkpoints,
 * kept for a future resume, are the documented exception.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { animindBin, repoRoot, runCli, type CliResult } from '../helpers/cli.ts';
import { within } from '../helpers/wait.ts';
import { trainArgs, trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace();
const out = path.join(dir, 'out');
const runDir = path.join(out, 'dry_run');
const fakePython = path.join(import.meta.dirname, 'fake-python.sh');
const errorLines = (run: Pick<CliResult, 'stderr'>) => run.stderr.split('\n').filter((l) => l.startsWith('error:'));
let python: string;
let finished: Record<string, string>;

/** Every file and folder under `root`, hidden ones included: a folder as 'folder', a file as its bytes' digest. */
function tree(root: string): Record<string, string> {
  const entries = (readdirSync(root, { recursive: true }) as string[]).sort();
  const describe = (file: string) =>
    statSync(file).isDirectory() ? 'folder' : createHash('sha256').update(readFileSync(file)).digest('hex');
  return Object.fromEntries(entries.map((name) => [name, describe(path.join(root, name))]));
}

const rerun = (overrides: Record<string, string | number>, env: NodeJS.ProcessEnv) =>
  runCli(trainArgs(prep, out, { dry_run_max_steps: 2, ...overrides }), { env });

before(async () => {
  python = await findPython('');
  const first = await runCli(
    trainArgs(prep, out, { dry_run_max_steps: 2, checkpoint_every_steps: 1, eval_every_steps: 1 }),
    { env: { ANIMIND_PYTHON: python } },
  );
  assert.equal(first.code, 0, first.stderr.slice(-3000));
  finished = tree(out);
});

test('a finished run is published whole: its files name the run folder, never the staging folder', () => {
  assert.deepEqual(readdirSync(out), ['dry_run'], 'nothing but the run folder beside it');
  assert.deepEqual(readdirSync(runDir).sort(), [
    'final_model',
    'phase1_linking',
    'phase2_reasoning',
    'tokenizer',
    'train_config_snapshot.json',
    'train_run_summary.json',
  ]);
  const summary = JSON.parse(readFileSync(path.join(runDir, 'train_run_summary.json'), 'utf8'));
  assert.equal(summary.final_model, path.join(runDir, 'final_model'));
  assert.equal(summary.tokenizer_dir, path.join(runDir, 'tokenizer'));
  assert.ok(summary.phases[0].checkpoints.length > 0);
  for (const checkpoint of summary.phases[0].checkpoints) assert.ok(existsSync(checkpoint), checkpoint);
  const snapshot = JSON.parse(readFileSync(path.join(runDir, 'train_config_snapshot.json'), 'utf8'));
  assert.equal(snapshot.config.out_dir, runDir);
  assert.equal(snapshot.config.staging_dir, undefined, 'the staging folder is no part of the record');
});

test('SIGTERM before the first step (nothing to checkpoint) exits 75, the finished run left as it was', async () => {
  const child = spawn(process.execPath, [animindBin, ...trainArgs(prep, out, { dry_run_max_steps: 2 })], {
    cwd: repoRoot,
    env: { ...process.env, ANIMIND_PYTHON: python },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  // The worker prints its runtime table after saving the tokenizer, just before `ready`.
  const saved = new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('worker: runtime:')) resolve();
    });
    void closed.then(() => reject(new Error(`exited before the worker was ready:\n${stderr}`)));
  });
  await within(saved, 'the worker to save its tokenizer', 120_000);
  const staging = path.join(out, `.dry_run.unfinished-${child.pid}`);
  assert.ok(existsSync(path.join(staging, 'tokenizer', 'tokenizer.json')), 'the worker wrote into its staging folder');
  assert.ok(existsSync(path.join(staging, 'train_config_snapshot.json')));

  // A graceful stop: the worker is preempted before its first optimizer step, so there is no
  // checkpoint to keep and the staging folder goes too.
  child.kill('SIGTERM');
  assert.equal(await within(closed, 'the run to stop'), 75, stderr);
  assert.deepEqual(errorLines({ stderr }), [
    "error: node 'train': preempted before the first optimizer step: no checkpoint to resume from",
  ]);
  assert.deepEqual(tree(out), finished);
});

test('a worker killed in the middle of a batch leaves the finished run as it was', async () => {
  const run = await rerun({}, { ANIMIND_PYTHON: fakePython, FAKE_WORKER: 'die-mid-batch' });
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(tree(out), finished);
});

test('a worker that runs out of disk fails with its one line and leaves the finished run as it was', async () => {
  const run = await rerun({}, { ANIMIND_PYTHON: fakePython, FAKE_WORKER: 'disk-full' });
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(errorLines(run), [
    `error: node 'train': trainer worker exited with code 1: ` +
      `cannot write ${runDir}/phase1_linking/checkpoint-1: no space left on device (ENOSPC)`,
  ]);
  assert.deepEqual(tree(out), finished);
});

test('a vocabulary of the wrong size is refused at validation, naming the file, before anything runs', async () => {
  const vocab = JSON.parse(readFileSync(path.join(repoRoot, 'fixtures/semantic_vocab.json'), 'utf8'));
  const short = path.join(dir, 'short_vocab.json');
  writeFileSync(short, JSON.stringify({ ...vocab, tokens: vocab.tokens.slice(0, 6 + 2048) }));
  const run = await rerun({ semantic_vocab: short }, { ANIMIND_PYTHON: python });
  assert.equal(run.code, 2, run.stderr);
  // Found by validation: the line points at the train node's semantic_vocab option.
  const yaml = readFileSync(path.join(repoRoot, 'pipelines/train.yaml'), 'utf8').split('\n');
  const line = yaml.indexOf('    semantic_vocab: ${semantic_vocab}', yaml.indexOf('  train:')) + 1;
  assert.deepEqual(errorLines(run), [
    `error: pipelines/train.yaml:${line}: node 'train': ${short}: "tokens" has 2054 tokens, expected 16390: ` +
      `the 6 special_tokens, then the 16384 level tokens <L1_0>…<L8_2047>`,
  ]);
  assert.deepEqual(tree(out), finished);
});

test('a run that saved checkpoints before it failed keeps them beside the run folder, not in it', async () => {
  const run = await rerun({}, { ANIMIND_PYTHON: fakePython, FAKE_WORKER: 'checkpoint-then-die' });
  assert.equal(run.code, 1, run.stderr);
  const kept = readdirSync(out).filter((name) => name !== 'dry_run');
  assert.equal(kept.length, 1, `one folder beside the run folder: ${kept.join(', ')}`);
  assert.match(kept[0]!, /^\.dry_run\.unfinished-\d+$/);
  assert.match(run.stderr, new RegExp(`checkpoint ${path.join(out, kept[0]!, 'phase1_linking', 'checkpoint-1')}`));
  // The complete checkpoint stays with the tokenizer it was trained with; the half-written one is gone.
  assert.deepEqual(readdirSync(path.join(out, kept[0]!, 'phase1_linking')), ['checkpoint-1']);
  assert.ok(existsSync(path.join(out, kept[0]!, 'tokenizer', 'tokenizer.json')));
  assert.deepEqual(tree(runDir), finishedUnder('dry_run'));
  rmSync(path.join(out, kept[0]!), { recursive: true });
});

/** The finished run's entries under `sub`, relative to it. */
function finishedUnder(sub: string): Record<string, string> {
  const prefix = sub + path.sep;
  return Object.fromEntries(
    Object.entries(finished)
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, digest]) => [name.slice(prefix.length), digest]),
  );
}

test('an empty dataset creates nothing: not the run folder, not its parents', async () => {
  const empty = path.join(dir, 'empty.jsonl');
  writeFileSync(empty, '');
  const fresh = path.join(dir, 'fresh');
  const run = await runCli(trainArgs(empty, path.join(fresh, 'out')), { env: { ANIMIND_PYTHON: python } });
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(errorLines(run), ["error: node 'steps1': no rows to train on: the input had none"]);
  assert.ok(!existsSync(fresh), `${fresh} was created`);
});

test('a finished re-run replaces the previous run whole, leaving none of its files', async () => {
  const merged = await rerun(
    { learning_rate: 1e-2, checkpoint_every_steps: 2, export_merged: 'true' },
    { ANIMIND_PYTHON: python },
  );
  assert.equal(merged.code, 0, merged.stderr.slice(-3000));
  assert.deepEqual(readdirSync(out), ['dry_run']);
  assert.deepEqual(readdirSync(runDir).sort(), [
    'final_model',
    'merged',
    'phase1_linking',
    'phase2_reasoning',
    'tokenizer',
    'train_config_snapshot.json',
    'train_run_summary.json',
  ]);
  assert.deepEqual(readdirSync(path.join(runDir, 'phase1_linking')).sort(), ['best_model', 'checkpoint-2']);
  const snapshot = JSON.parse(readFileSync(path.join(runDir, 'train_config_snapshot.json'), 'utf8'));
  assert.equal(snapshot.config.learning_rate, 1e-2, 'the snapshot describes the model beside it');
  // A re-run without the optional merged/ leaves no stale one beside its model.
  const plain = await rerun({ learning_rate: 1e-3 }, { ANIMIND_PYTHON: python });
  assert.equal(plain.code, 0, plain.stderr.slice(-3000));
  assert.ok(!existsSync(path.join(runDir, 'merged')), 'the previous run’s merged/ is gone');
});
