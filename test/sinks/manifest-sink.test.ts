import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { ConfigError } from '../../engine/errors.ts';
import type { Manifest } from '../../sinks/manifest-sink.ts';
import { PREP_ROW_COLUMNS } from '../../transforms/prep/prep-row.ts';
import { prepRows, runYaml, tempDir, writeJsonl } from './prep-rows.ts';

const pipeline = (manifestExtra = '') => `
name: manifest-test
seed: 7
params:
  first: a.jsonl
  out: out
nodes:
  a:
    use: jsonl-source
    path: \${first}
  again:
    use: jsonl-source
    path: a.jsonl
  b:
    use: jsonl-source
    path: b.jsonl
  rows:
    use: merge
    from: [a, again, b]
  jsonl:
    use: jsonl-sink
    from: rows
    path: \${out}/rows.jsonl
  parquet:
    use: parquet-sink
    from: rows
    path: \${out}/rows.parquet
    columns: ${JSON.stringify(PREP_ROW_COLUMNS)}
  manifest:
    use: manifest-sink
    from: rows
    path: \${out}/manifest.json
${manifestExtra}`;

const digest = (file: string) => ({
  bytes: statSync(file).size,
  sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
});

function setup(name: string) {
  const dir = tempDir(name);
  writeJsonl(path.join(dir, 'a.jsonl'), prepRows(30));
  writeJsonl(path.join(dir, 'b.jsonl'), prepRows(12));
  return dir;
}

describe('manifest-sink', () => {
  afterEach(() => delete process.env.ANIMIND_FIXED_TIME);

  test(
    'lists every input file with size and sha256, and ' + 'every other output with rows and the final sha256',
    async () => {
      const dir = setup('manifest');
      process.env.ANIMIND_FIXED_TIME = '2024-05-01T12:00:00Z';
      const result = await runYaml(dir, pipeline());
      const manifest = JSON.parse(readFileSync(path.join(dir, 'out/manifest.json'), 'utf8')) as Manifest;
      assert.ok(result.outputs.includes(path.join(dir, 'out/manifest.json')));

      const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
      assert.deepEqual(manifest.tool, { name: 'animind', version });
      assert.equal(manifest.generated_at, '2024-05-01T12:00:00Z');
      assert.equal(manifest.pipeline, 'manifest-test');
      assert.equal(manifest.seed, 7);
      assert.deepEqual(manifest.params, { first: 'a.jsonl', out: 'out' });
      assert.deepEqual(manifest.config, {});
      assert.deepEqual(manifest.inputs, [
        { path: '../a.jsonl', used_by: ['a.path', 'again.path'], ...digest(path.join(dir, 'a.jsonl')) },
        { path: '../b.jsonl', used_by: ['b.path'], ...digest(path.join(dir, 'b.jsonl')) },
      ]);
      assert.deepEqual(manifest.outputs, [
        { path: 'rows.jsonl', node: 'jsonl', rows: 72, ...digest(path.join(dir, 'out/rows.jsonl')) },
        { path: 'rows.parquet', node: 'parquet', rows: 72, ...digest(path.join(dir, 'out/rows.parquet')) },
      ]);
    },
  );

  test(
    "pin_time, --set values and the run's config are " + 'recorded; the option wins over ANIMIND_FIXED_TIME',
    async () => {
      const dir = setup('manifest-pin');
      process.env.ANIMIND_FIXED_TIME = '2024-05-01T12:00:00Z';
      await runYaml(
        dir,
        pipeline('    pin_time: 2020-01-02T03:04:05.000Z\n'),
        { out: path.join(dir, 'elsewhere') },
        { note: 'kept' },
      );
      const manifest = JSON.parse(readFileSync(path.join(dir, 'elsewhere/manifest.json'), 'utf8')) as Manifest;
      assert.equal(manifest.generated_at, '2020-01-02T03:04:05.000Z');
      assert.deepEqual(manifest.config, { note: 'kept' });
      assert.equal(manifest.params.out, path.join(dir, 'elsewhere'));
    },
  );

  test('without a pinned time, generated_at is the current time', async () => {
    const dir = setup('manifest-now');
    const before = Date.now();
    await runYaml(dir, pipeline());
    const { generated_at } = JSON.parse(readFileSync(path.join(dir, 'out/manifest.json'), 'utf8')) as Manifest;
    assert.ok(Date.parse(generated_at) >= before - 1000 && Date.parse(generated_at) <= Date.now());
  });

  test('an ANIMIND_FIXED_TIME that is not an ISO time is a config error', async () => {
    const dir = setup('manifest-badtime');
    process.env.ANIMIND_FIXED_TIME = 'yesterday';
    await assert.rejects(
      runYaml(dir, pipeline()),
      (error: unknown) => error instanceof ConfigError && /ANIMIND_FIXED_TIME 'yesterday'/.test(error.message),
    );
    assert.equal(existsSync(path.join(dir, 'out')), false);
  });

  test('when another sink fails, no manifest is written', async () => {
    const dir = setup('manifest-fail');
    writeJsonl(path.join(dir, 'b.jsonl'), [{ ...prepRows(1)[0]!, user_id: 'nobody' }]);
    await assert.rejects(runYaml(dir, pipeline()), /user_id/);
    assert.equal(existsSync(path.join(dir, 'out/manifest.json')), false);
  });
});
