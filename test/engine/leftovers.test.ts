/**
 * What a run leaves in its output folder when it is killed, and what two runs into one folder do,
 * with real `animind` processes: prep writes its outputs as hidden `.NAME.tmp-PID` files, renamed
 * when the run succeeds, and holds the folder with `.animind.lock` while it runs.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { animindBin, repoRoot, runCli } from '../helpers/cli.ts';
import { waitUntil, within } from '../helpers/wait.ts';

const OUTPUTS = [
  'llm_prep_manifest.json',
  'llm_prep_summary.json',
  'llm_prep_test.jsonl',
  'llm_prep_train.jsonl',
  'llm_prep_train_histories.jsonl',
  'llm_prep_valid.jsonl',
];

const prepArgs = (outDir: string, ...more: string[]) => [
  'pipeline',
  'run',
  'pipelines/prep.yaml',
  '--set',
  `out_dir=${outDir}`,
  ...more,
];

/** A folder for the test's runs, removed when it ends (a finished prep leaves tens of MB). */
function scratch(t: TestContext, label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `animind-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A prep run in the background, seconds long at this many rows on the fixtures, to be caught midway. */
function startPrep(
  outDir: string,
  rows: number,
): { child: ChildProcess; exited: Promise<[number | null, NodeJS.Signals | null]> } {
  const args = prepArgs(outDir, '--set', `target_examples=${rows}`, '--quiet');
  const child = spawn(process.execPath, [animindBin, ...args], { cwd: repoRoot, stdio: 'ignore' });
  return { child, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> };
}

const readOrEmpty = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

/** Resolves once the run holds its folder: the lock is there with its pid written. */
const lockedBy = (lock: string, pid: number) =>
  waitUntil(() => readOrEmpty(lock) === `${pid}\n`, `${lock} to hold pid ${pid}`);

test('a SIGKILLed prep leaves its temporary file; the next run into the folder removes it and says so', async (t) => {
  const outDir = path.join(scratch(t, 'killed'), 'out');
  const killed = startPrep(outDir, 400_000);
  const pid = killed.child.pid!;
  const temp = path.join(outDir, `.llm_prep_train.jsonl.tmp-${pid}`);
  await waitUntil(() => existsSync(temp), `the training file's temporary file ${temp}`);
  killed.child.kill('SIGKILL');
  assert.deepEqual(await within(killed.exited, 'the killed run to exit'), [null, 'SIGKILL']);
  assert.ok(existsSync(temp), 'SIGKILL gives a run no chance to remove its temporary file');

  const next = await runCli(prepArgs(outDir, '--progress', 'lines'));
  assert.equal(next.code, 0, next.stderr);
  const said = next.stderr.split('\n').filter((line) => line.includes('removed'));
  assert.equal(said.length, 1, next.stderr);
  // The other outputs (held-out users, training histories) may have been started too when it was
  // killed; the line names the first three files in name order, then "…".
  const file = (name: string) => String.raw`\.${name}\.tmp-${pid}`;
  assert.match(
    said[0]!,
    new RegExp(
      String.raw`^\[train_jsonl\] .+/out: removed [1-4] temporary files? \((${file('llm_prep_test.jsonl')}, )?` +
        String.raw`${file('llm_prep_train.jsonl')}(, ${file('llm_prep_train_histories.jsonl')})?` +
        String.raw`(, ${file('llm_prep_valid.jsonl')}|, …)?; ` +
        String.raw`[\d.]+ MB\) and the lock \.animind\.lock left by a run that no longer runs \(pid ${pid}\)$`,
    ),
  );
  assert.deepEqual(readdirSync(outDir).sort(), OUTPUTS, 'no temporary file and no lock is left');
});

test('a second run into the folder a running prep writes is refused with one line naming its pid', async (t) => {
  const outDir = path.join(scratch(t, 'busy'), 'out');
  const lock = path.join(outDir, '.animind.lock');
  const first = startPrep(outDir, 100_000);
  const pid = first.child.pid!;
  await lockedBy(lock, pid);
  // Stopped, the first run is still running while the second tries, however fast the machine.
  first.child.kill('SIGSTOP');
  let second;
  try {
    second = await runCli(prepArgs(outDir, '--quiet'));
  } finally {
    first.child.kill('SIGCONT');
  }
  assert.equal(second.code, 1, 'exit 1: the folder is busy for now, nothing is wrong with the pipeline');
  assert.equal(
    second.stderr,
    `error: node 'train_jsonl': ${outDir} is in use by another animind run (pid ${pid}, lock file ${lock}): ` +
      `wait for it to finish or write to another folder (delete the lock file only if pid ${pid} is not an ` +
      'animind run)\n',
  );
  assert.deepEqual(await within(first.exited, 'the first run to finish'), [0, null]);
  assert.deepEqual(readdirSync(outDir).sort(), OUTPUTS, 'the first run wrote its outputs and released the lock');
});

test('a prep interrupted with Ctrl-C (SIGINT) releases the lock with the rest of its outputs', async (t) => {
  const parent = scratch(t, 'interrupted');
  const outDir = path.join(parent, 'out');
  const run = startPrep(outDir, 400_000);
  await lockedBy(path.join(outDir, '.animind.lock'), run.child.pid!);
  run.child.kill('SIGINT');
  assert.deepEqual(await within(run.exited, 'the interrupted run to exit'), [130, null]);
  assert.deepEqual(readdirSync(parent), [], 'the folder the run made is gone, so nothing of it (lock included) stays');
});
