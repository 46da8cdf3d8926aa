import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../engine/errors.ts';
import { parseParam, parseParamType, type ParamType } from '../../engine/params.ts';
import { readPipelineFile } from '../../engine/pipeline-file.ts';
import { runCli } from '../helpers/cli.ts';
import { loadTestPlan } from '../helpers/plan.ts';

const type = (text: string) => parseParamType(text) as ParamType;
const fromText = (text: string, value: string) => parseParam({ name: 'p', type: type(text) }, value, true, '--set p');

test('a --set value is parsed into the declared type', () => {
  assert.equal(fromText('integer', '400000'), 400000);
  assert.equal(fromText('number', '2e-4'), 0.0002);
  assert.equal(fromText('boolean', 'false'), false);
  assert.equal(fromText('string', ''), '');
  assert.deepEqual(fromText('integer[]', '1, 2,6'), [1, 2, 6]);
  assert.deepEqual(fromText('string[]', 'last,random'), ['last', 'random']);
  assert.deepEqual(fromText('string[]', ''), []);
  assert.equal(fromText('integer | auto', 'auto'), 'auto');
  assert.equal(fromText('integer | auto', '4'), 4);
});

test('a value that does not fit is one line saying what was expected', () => {
  const problem = (text: string, value: string) => {
    try {
      fromText(text, value);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    return assert.fail(`${value} was taken as ${text}`);
  };
  assert.equal(problem('integer', '1e5'), '--set p: expected an integer, got "1e5"');
  assert.equal(problem('boolean', 'yes'), '--set p: expected true or false, got "yes"');
  assert.equal(problem('integer[]', '1,x'), '--set p: expected a list of integers, got "1,x"');
  assert.equal(problem('integer | auto', 'many'), '--set p: expected an integer or "auto", got "many"');
  // An unset shell variable must not turn an output folder into the working folder or the root.
  assert.equal(problem('path', ''), '--set p: expected a non-empty path, got ""');
});

test('a config value must have the type already, and a bad one points at its key and line', () => {
  const where = { file: 'animind.toml', line: 7, key: 'prep.target_examples' };
  assert.equal(parseParam({ name: 'p', type: type('integer') }, 3000, false, '', where), 3000);
  assert.throws(
    () => parseParam({ name: 'p', type: type('integer') }, '3000', false, '', where),
    (error: ConfigError) =>
      error.oneLine() === `animind.toml:7: key 'prep.target_examples': expected an integer, got string "3000"`,
  );
});

test('types are checked where they are declared', () => {
  assert.equal(
    parseParamType('float'),
    "type 'float': expected integer, number, boolean, string, path, integer[], " +
      'number[], string[], or one of them | literal words (integer | auto)',
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-params-'));
  const file = path.join(dir, 'p.yaml');
  writeFileSync(file, 'name: p\nparams:\n  n: { type: integer, default: 1.5 }\n  m: 3\nnodes: {}\n');
  const { spec, problems } = readPipelineFile(file);
  assert.deepEqual(
    problems.map((p) => p.oneLine()),
    [`${file}:3: params.n: default: expected an integer, got number 1.5`],
  );
  assert.deepEqual(
    spec.paramSpecs.map((p) => [p.name, p.type.text, p.default]),
    [['m', 'integer', 3]],
  );
});

test('a parameter that is a whole option value keeps its type; inside a string it is text', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-params-'));
  const file = path.join(dir, 'p.yaml');
  writeFileSync(
    file,
    'name: p\nparams:\n  chunk: { type: integer, default: 4096 }\n  name: { type: string, default: rows }\n' +
      'nodes:\n  rows:\n    use: jsonl-source\n    path: "-"\n    read_chunk_bytes: ${chunk}\n' +
      '  write:\n    use: jsonl-sink\n    from: rows\n    path: out/${name}-${chunk}.jsonl\n',
  );
  const plan = await loadTestPlan(file, { chunk: '512' });
  const options = Object.fromEntries(plan.nodes.map((n) => [n.spec.id, n.options]));
  assert.equal(options.rows!.read_chunk_bytes, 512);
  // Part of it came from --set, so it resolves against the working folder, as a path typed there would.
  assert.equal(options.write!.path, path.resolve('out/rows-512.jsonl'));
});

test('animind pipeline params lists each parameter with its type, default and description', async () => {
  const { code, stdout } = await runCli(['pipeline', 'params', 'pipelines/prep.yaml']);
  assert.equal(code, 0);
  assert.match(stdout, /^ {2}scan_workers: integer \| auto += auto {2}worker threads for the user pass$/m);
  assert.match(stdout, /^ {2}task_b_allowed_statuses: integer\[\] += 1,2,3,4,6 {2}watching_status values kept$/m);
  const json = await runCli(['pipeline', 'params', 'pipelines/train.yaml', '--json']);
  const seed = (JSON.parse(json.stdout) as { name: string }[]).find((p) => p.name === 'seed');
  assert.deepEqual(seed, {
    name: 'seed',
    type: 'integer',
    default: 42,
    description: "seed of every random choice (dry-run sample, eval hold-out, epoch order, the worker's init)",
  });
});
