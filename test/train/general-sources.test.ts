import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { toExchange } from '../../sources/train/instruction-rows.ts';
import { runCli } from '../helpers/cli.ts';
import { BUNDLED_ENGLISH, BUNDLED_INSTRUCTIONS } from './train-cli.ts';

test('every instruction row shape the spec lists becomes one exchange, system message kept', () => {
  const expected = { system: 'Be brief.', input: 'What is 2+2?', output: '4' };
  const shapes = [
    { system: 'Be brief.', instruction: 'What is 2+2?', output: '4' },
    { system_prompt: 'Be brief.', prompt: 'What is 2+2?', response: '4' },
    {
      conversations: [
        { from: 'system', value: 'Be brief.' },
        { from: 'human', value: 'What is 2+2?' },
        { from: 'gpt', value: '4' },
        { from: 'human', value: 'And 3+3?' },
        { from: 'gpt', value: '6' },
      ],
    },
    {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is 2+2?' },
        { role: 'assistant', content: '4' },
      ],
    },
  ];
  for (const row of shapes) assert.deepEqual(toExchange(row), expected, JSON.stringify(row));
  assert.deepEqual(toExchange({ instruction: 'Add these.', input: '2 and 2', output: '4' }), {
    input: 'Add these.\n\n2 and 2',
    output: '4',
  });
  assert.equal(toExchange({ text: 'no exchange here' }), undefined);
  assert.equal(toExchange({ conversations: [{ from: 'human', value: 'unanswered' }] }), undefined);
});

const dir = mkdtempSync(path.join(tmpdir(), 'animind-general-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A pipeline of one source written to a JSONL file, run through the CLI. */
async function runSource(node: Record<string, unknown>, name: string) {
  const file = path.join(dir, `${name}.yaml`);
  const out = path.join(dir, `${name}.jsonl`);
  const body = Object.entries(node)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(
    file,
    `name: ${name}\nnodes:\n  source:\n${body}\n  out:\n    use: jsonl-sink\n    from: source\n    path: ${out}\n`,
  );
  const run = await runCli(['pipeline', 'run', file], { env: { HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' } });
  const rows =
    run.code === 0
      ? readFileSync(out, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  return { run, rows };
}

test('a local instruction file is read as is, max_rows_per_source of it, labelled with its name', async () => {
  const { run, rows } = await runSource(
    { use: 'general-instructions', sources: [BUNDLED_INSTRUCTIONS], max_rows_per_source: 7 },
    'local',
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(rows.length, 7);
  assert.deepEqual(Object.keys(rows[0]!), ['example_id', 'task', 'input', 'output']);
  assert.equal(rows[0]!.example_id, 'instructions.jsonl:0');
  assert.equal(rows[0]!.task, 'instructions.jsonl');
});

test(
  'offline, a dry run replaces hub sources it cannot load with the bundled rows and says so; ' +
    'a full run stops with one line',
  { timeout: 120_000 },
  async () => {
    const dry = await runSource({ use: 'general-instructions', sources: ['SlimOrca', 'OpenHermes'] }, 'dry');
    assert.equal(dry.run.code, 0, dry.run.stderr);
    assert.match(
      dry.run.stderr,
      /general mix: SlimOrca \(Open-Orca\/SlimOrca-Dedup\) could not be loaded \(.+\); dry run: using the 120 instruction rows written for this project \(fixtures\/general-mix\/instructions\.jsonl\) instead/,
    );
    assert.equal(dry.rows.length, 120, 'the bundled rows once, not once per source');
    assert.ok(dry.rows.every((r) => r.task === 'bundled'));

    const full = await runSource({ use: 'general-instructions', sources: ['SlimOrca'], dry_run: false }, 'full');
    assert.equal(full.run.code, 1);
    const lines = full.run.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('error'));
    assert.equal(lines.length, 1, full.run.stderr);
    assert.match(
      lines[0]!,
      /general mix source SlimOrca \(Open-Orca\/SlimOrca-Dedup\) could not be loaded: .+; connect to the hub/,
    );
    assert.doesNotMatch(full.run.stderr, /Traceback|at .+\.ts:\d+/);
  },
);

test('English texts: lines of at least 8 characters, trimmed, the first max_samples', async () => {
  const texts = path.join(dir, 'texts.txt');
  writeFileSync(
    texts,
    ['  A first line of text.  ', 'short', '', ' = Heading = ', 'A third kept line.', 'Not kept.'].join('\n'),
  );
  const { run, rows } = await runSource({ use: 'english-texts', dataset: texts, max_samples: 3 }, 'english');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(
    rows.map((r) => r.completion),
    ['A first line of text.', '= Heading =', 'A third kept line.'],
  );
  const offline = await runSource({ use: 'english-texts', max_samples: 5 }, 'english-offline');
  assert.equal(offline.run.code, 0, offline.run.stderr);
  assert.match(
    offline.run.stderr,
    /English eval: wikitext2 \(Salesforce\/wikitext\) could not be loaded .*dry run: using the English texts written for this project/,
  );
  assert.equal(offline.rows[0]!.completion, readFileSync(BUNDLED_ENGLISH, 'utf8').split('\n')[0]);
});
