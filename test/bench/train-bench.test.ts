/**
 * `npm run bench:train` end to end on the CPU, at the smallest settings that still time steps:
 * the tiny preset through our train graph and through TRL + PEFT, and the table comparing them.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { repoRoot } from '../helpers/cli.ts';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawned(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const bench = (args: string[]) =>
  spawned(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/train.ts'), ...args]);

/** The table row whose first cell is `run`, as its cells. */
function row(stdout: string, run: string): string[] {
  const line = stdout.split('\n').find((l) => l.startsWith(`| ${run} `));
  assert.ok(line, `no row '${run}' in:\n${stdout}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

test('bench:train times the tiny preset through our graph and through TRL + PEFT, and compares them', async () => {
  const { code, stdout, stderr } = await bench([
    ...['--preset', 'tiny', '--device', 'cpu', '--warmup', '1', '--steps', '2'],
    ...['--seq-len', '128', '--global-rows', '2'],
  ]);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(
    stdout,
    /^CPU, \d+ cores; 240 prep rows, 128 tokens a sequence, 2 sequences a step, 1 warm-up \+ 2 timed/,
  );
  const rate = /^\d[\d,]*$/;
  const share = /^\d+\.\d%$/;
  const [, stack, tokens, mfu, memory, nonPadding, pipeWait, ratio] = row(stdout, 'tiny ours');
  assert.match(stack!, /^animind \(sdpa, /);
  assert.match(tokens!, rate);
  assert.equal(mfu, 'n/a'); // no peak FLOP/s for a CPU
  assert.match(memory!, /^\d+\.\d\d GiB$/);
  assert.match(nonPadding!, share);
  assert.match(pipeWait!, share);
  assert.match(ratio!, /^\d+\.\d\dx$/);
  const baseline = row(stdout, 'tiny baseline');
  assert.match(baseline[1]!, /^trl [\d.]+ \+ peft [\d.]+$/);
  assert.match(baseline[2]!, rate);
  assert.equal(baseline[5], '100.0%'); // TRL's packing feeds padding-free rows
  assert.deepEqual(baseline.slice(6), ['-', '1.00x']);
});

test('a GPU machine without Node replays the recorded frames to our worker, then runs the baseline', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'animind-gpu-check-'));
  try {
    const bundle = path.join(dir, 'bundle');
    const recorded = await bench([
      ...['--record-frames', bundle, '--preset', 'tiny', '--warmup', '1', '--steps', '1'],
      ...['--seq-len', '128', '--global-rows', '2'],
    ]);
    assert.equal(recorded.code, 0, recorded.stderr.slice(-3000));
    assert.deepEqual(readdirSync(bundle).sort(), ['bench.json', 'frames.bin', 'tokenizer']);

    // What bench/gpu-check.sh does on the device machine, here on the CPU.
    const results = path.join(dir, 'results');
    const env = { ...process.env, OUT: results, DEVICE: 'cpu', PYTHON: await findPython('') };
    const checked = await spawned('bash', ['bench/gpu-check.sh', bundle], env);
    assert.equal(checked.code, 0, checked.stderr);
    assert.deepEqual(readdirSync(results).sort(), ['bench.json', 'gpu-check.log', 'tiny.json']);

    const { code, stdout, stderr } = await bench(['--results', results]);
    assert.equal(code, 0, stderr.slice(-3000));
    assert.match(stdout, /^1 x cpu; 240 prep rows, 128 tokens a sequence, 2 sequences a step/);
    assert.match(row(stdout, 'tiny ours')[2]!, /^\d[\d,]*$/);
    assert.match(row(stdout, 'tiny baseline')[1]!, /^trl [\d.]+ \+ peft [\d.]+$/);
    assert.match(row(stdout, 'tiny ours')[7]!, /^\d+\.\d\dx$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
