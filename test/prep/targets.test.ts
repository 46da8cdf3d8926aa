/**
 * target_examples that prep cannot honour are refused before any data is read: 0 (an empty
 * dataset) and a target whose sample would not fit in V8's heap (which used to run for minutes,
 * then die of heap exhaustion with a V8 stack dump, leaving a temporary file behind).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SAMPLED_ROW_BYTES, targetMemoryProblem } from '../../transforms/prep/quotas.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';

/** Where errors about the option point: the sample node's `target_examples:` line in pipelines/prep.yaml. */
const yaml = readFileSync(path.join(repoRoot, 'pipelines/prep.yaml'), 'utf8').split('\n');
const line = yaml.indexOf('    target_examples: ${target_examples}', yaml.indexOf('  sample:')) + 1;
const at = `pipelines/prep.yaml:${line}`;

const outDir = () => path.join(mkdtempSync(path.join(tmpdir(), 'animind-target-')), 'out');

const prep = (command: 'run' | 'validate', target: number, out: string, env: NodeJS.ProcessEnv = {}) =>
  runCli(
    ['pipeline', command, 'pipelines/prep.yaml', '--set', `out_dir=${out}`, '--set', `target_examples=${target}`],
    {
      env,
    },
  );

test('target_examples = 0 is an option error of prep-sample: one line, exit 2, nothing written', async () => {
  const out = outDir();
  const { code, stderr } = await prep('run', 0, out);
  assert.equal(code, 2);
  assert.equal(stderr, `error: ${at}: node 'sample': option 'target_examples': expected at least 1 row, got 0\n`);
  assert.equal(existsSync(out), false);
});

test("a target whose sample cannot fit in V8's heap is refused up front: estimate, limit and fix", async () => {
  const out = outDir();
  const { code, stderr } = await prep('run', 1e11, out);
  assert.equal(code, 2);
  assert.equal(stderr.split('\n').length, 2, `one line: ${stderr}`);
  assert.match(
    stderr,
    new RegExp(
      String.raw`^error: ${at}: node 'sample': target_examples 100000000000 needs about ` +
        String.raw`9,536,744 MB of heap \(~100 bytes a sampled row, held until the shuffle\), ` +
        String.raw`over V8's heap limit of [\d,]+ MB: lower target_examples, ` +
        String.raw`or raise the limit with NODE_OPTIONS=--max-old-space-size=9537536`,
    ),
  );
  assert.equal(existsSync(out), false, 'nothing was written, not even the folder');
});

test('the refusal follows the heap limit: raising it as the message says lets the same target through', async () => {
  const out = outDir();
  // 2,000,000 rows need ~191 MB, past the 176 MB a 128 MB old generation gives (a run there died of heap exhaustion).
  const small = await prep('validate', 2_000_000, out, { NODE_OPTIONS: '--max-old-space-size=128' });
  assert.equal(small.code, 2);
  assert.match(
    small.stderr,
    /needs about 191 MB of heap .* over V8's heap limit of \d+ MB: .*--max-old-space-size=1024\n$/,
  );
  const raised = await prep('validate', 2_000_000, out, { NODE_OPTIONS: '--max-old-space-size=1024' });
  assert.equal(raised.code, 0, raised.stderr);
  assert.match(raised.stderr, /prep\.yaml: ok/);
});

test('the estimate is the target times the bytes a sampled row holds, against the limit', () => {
  const ram = 16 * 2 ** 30;
  const limit = 40_000_000 * SAMPLED_ROW_BYTES;
  assert.equal(targetMemoryProblem(40_000_000, limit, ram), undefined, 'a target that just fits runs');
  assert.notEqual(targetMemoryProblem(40_000_001, limit, ram), undefined, 'one row more is refused');
  assert.match(targetMemoryProblem(50_000_000, limit, ram)!, /needs about 4,769 MB of heap .* heap limit of 3,815 MB/);
  assert.match(targetMemoryProblem(1e9, limit, ram)!, /\(this machine has 16,384 MB in all\)$/);
});
