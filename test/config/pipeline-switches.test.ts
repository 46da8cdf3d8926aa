import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PREP_ROW_COLUMNS } from '../../transforms/prep/prep-row.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { prepRows, runYaml, tempDir, writeJsonl } from '../sinks/prep-rows.ts';

const pipeline = `
name: switches
seed: \${seed}
params:
  seed: 42
  export_parquet: { type: boolean, default: false, description: also write Parquet }
nodes:
  rows:
    use: jsonl-source
    path: rows.jsonl
  jsonl:
    use: jsonl-sink
    from: rows
    path: out/rows.jsonl
  parquet:
    use: parquet-sink
    enabled: \${export_parquet}
    from: rows
    path: out/rows.parquet
    columns: ${JSON.stringify(PREP_ROW_COLUMNS)}
`;

function setup(name: string) {
  const dir = tempDir(name);
  writeJsonl(path.join(dir, 'rows.jsonl'), prepRows(5));
  return dir;
}

describe('pipeline switches: node-level enabled and a parameterised seed', () => {
  test('a node with enabled: false is left out of the plan and writes nothing', async () => {
    const dir = setup('off');
    const result = await runYaml(dir, pipeline);
    assert.deepEqual(result.outputs, [path.join(dir, 'out/rows.jsonl')]);
    assert.equal(existsSync(path.join(dir, 'out/rows.parquet')), false);
  });

  test('--set turns it on', async () => {
    const dir = setup('on');
    const result = await runYaml(dir, pipeline, { export_parquet: 'true' });
    assert.ok(result.outputs.includes(path.join(dir, 'out/rows.parquet')));
  });

  test('a value other than true or false is an error naming the --set parameter', async () => {
    const dir = setup('bad');
    await assert.rejects(runYaml(dir, pipeline, { export_parquet: 'yes' }), (error: Error & { oneLine(): string }) => {
      assert.match(error.oneLine(), /pipeline\.yaml: --set export_parquet: expected true or false, got "yes"/);
      return true;
    });
  });

  test('reading from a switched-off node says so', async () => {
    const dir = setup('ref');
    const file = path.join(dir, 'p.yaml');
    writeFileSync(
      file,
      pipeline.replace(
        '  jsonl:\n    use: jsonl-sink\n    from: rows',
        '  jsonl:\n    use: jsonl-sink\n    from: parquet',
      ),
    );
    await assert.rejects(loadTestPlan(file), (error: { problems: { oneLine(): string }[] }) => {
      assert.ok(
        error.problems.some((p) =>
          /p\.yaml:\d+: node 'jsonl': input 'parquet' is switched off \(enabled: false\)/.test(p.oneLine()),
        ),
      );
      return true;
    });
  });

  test('the top-level seed can be a parameter', async () => {
    const dir = setup('seed');
    const file = path.join(dir, 'p.yaml');
    writeFileSync(file, pipeline);
    assert.equal((await loadTestPlan(file)).spec.seed, 42);
    assert.equal((await loadTestPlan(file, { seed: '7' })).spec.seed, 7);
    await assert.rejects(loadTestPlan(file, { seed: 'abc' }), (error: { oneLine(): string }) => {
      assert.match(error.oneLine(), /p\.yaml: --set seed: expected an integer, got "abc"/);
      return true;
    });
  });
});
