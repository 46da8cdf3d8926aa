/**
 * The whole loop learns. A generated dataset with a strong sequential rule goes through prep, a
 * short CPU train of the tiny model and eval, all through the CLI, and the trained model must
 * beat the most-popular baseline on Recall@10, with the report written.
 *
 * The rule: every user watches a contiguous run of a 100-anime catalogue in id order (the
 * generator's `sequential` option), so the anime after the last one watched is always the next
 * id. The semantic IDs, written here, make that rule easy to express in tokens: the catalogue
 * comes in groups of ten consecutive anime that share their first seven tokens and differ only
 * in the last. A model that has learnt to repeat the last watch's group puts the next anime in its
 * top 10 nine times out of ten (the trie leaves only the group's unwatched anime); popularity is
 * uniform, so most-popular is right about one time in ten.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BUNDLED_SEMANTIC_IDS, generateFixture } from '../../fixtures/generate-fixture.ts';
import { findPython } from '../../sinks/trainer/python.ts';
import { runCli } from '../helpers/cli.ts';
import { trainArgs } from '../train/train-cli.ts';

const CATALOGUE = 100;
const GROUP = 10;

const dir = mkdtempSync(path.join(tmpdir(), 'animind-loop-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const semanticIds = path.join(dir, 'semantic_ids.jsonl');
const database = path.join(dir, 'anime.sqlite');
const prepDir = path.join(dir, 'prep');
const runDir = path.join(dir, 'train', 'dry_run');
const evalDir = path.join(dir, 'eval');
let env: NodeJS.ProcessEnv;

/** The first 100 bundled anime, in id order, with IDs shared by groups of ten: <L1_g>…<L7_g><L8_k>. */
function writeGroupedSemanticIds(): void {
  const anime = readFileSync(BUNDLED_SEMANTIC_IDS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { anime_id: number; name: string; english_name: string | null })
    .sort((a, b) => a.anime_id - b.anime_id)
    .slice(0, CATALOGUE);
  const lines = anime.map((a, i) => {
    const group = 100 + Math.floor(i / GROUP);
    const codes = [group, group, group, group, group, group, group, 1 + (i % GROUP)];
    const tokens = codes.map((c, level) => `<L${level + 1}_${c}>`);
    return JSON.stringify({ ...a, semantic_id: tokens.join(''), tokens, codes });
  });
  writeFileSync(semanticIds, lines.join('\n') + '\n');
}

/**
 * A word-level tokenizer holding only the words prep wrote, beside a minimal chat template: the
 * real Qwen vocabulary (~150k rows) would make every step of the tiny model's head ten times dearer.
 */
function writeTinyTokenizer(folder: string): void {
  const specials = ['[UNK]', '<|im_start|>', '<|im_end|>'];
  const words = new Map<string, number>();
  for (const file of ['llm_prep_train.jsonl', 'llm_prep_test.jsonl']) {
    for (const line of readFileSync(path.join(prepDir, file), 'utf8').split('\n').filter(Boolean)) {
      const row = JSON.parse(line) as { input: string; output: string };
      const text = `${row.input} ${row.output} system user assistant`.replace(/<[^<>\s]+>/g, ' ');
      for (const word of text.match(/\w+|[^\w\s]+/g) ?? []) words.set(word, (words.get(word) ?? 0) + 1);
    }
  }
  const vocab: Record<string, number> = Object.fromEntries(specials.map((t, i) => [t, i]));
  [...words]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 2000)
    .forEach(([w], i) => {
      vocab[w] = specials.length + i;
    });
  const added = specials.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    path.join(folder, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
    }),
  );
  const chatTemplate =
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  writeFileSync(
    path.join(folder, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      chat_template: chatTemplate,
      eos_token: '<|im_end|>',
      pad_token: '[UNK]',
      unk_token: '[UNK]',
      bos_token: null,
    }),
  );
}

const set = (params: Record<string, string | number>) =>
  Object.entries(params).flatMap(([k, v]) => ['--set', `${k}=${v}`]);

before(async () => {
  env = { ANIMIND_PYTHON: await findPython('') };
  writeGroupedSemanticIds();
  generateFixture({
    out: database,
    semanticIds,
    users: 600,
    meanRowsPerUser: 10,
    extraAnime: 0,
    sequential: true,
    seed: 7,
    quiet: true,
  });
});

test(
  'prep, a short tiny-model train and eval: the model beats most-popular on Recall@10',
  { timeout: 600_000 },
  async (t) => {
    // Prep: nearly all rows Task B (the masked watch sequence), a tenth of the users held out.
    const prep = await runCli([
      'pipeline',
      'run',
      'pipelines/prep.yaml',
      ...set({
        database,
        semantic_ids: semanticIds,
        out_dir: prepDir,
        target_examples: 3000,
        split_a: 0.05,
        split_b: 0.9,
        split_c: 0.05,
        holdout_test: 0.1,
      }),
    ]);
    assert.equal(prep.code, 0, prep.stderr.slice(-3000));

    // Train: the tiny model, 160 steps a phase, both phases mostly Task B, no general rows.
    const tokenizer = path.join(dir, 'tokenizer');
    writeTinyTokenizer(tokenizer);
    const train = await runCli(
      trainArgs(path.join(prepDir, 'llm_prep_train.jsonl'), path.join(dir, 'train'), {
        tokenizer_path: tokenizer,
        ...{ phase1_weight_task_a: 0.05, phase1_weight_task_b: 0.9, phase1_weight_task_c: 0.05 },
        ...{ phase2_weight_task_a: 0.05, phase2_weight_task_b: 0.9, phase2_weight_task_c: 0.05 },
        general_ratio: 0,
        max_seq_len: 512,
        per_device_train_batch_size: 4,
        gradient_accumulation_steps: 1,
        learning_rate: 5e-3,
        dry_run_max_steps: 160,
        eval_max_samples: 2,
        log_every_steps: 10,
      }),
      { env },
    );
    assert.equal(train.code, 0, train.stderr.slice(-3000));

    // Eval: every held-out user, without SASRec (it is not what this test is about).
    const run = await runCli(
      [
        'pipeline',
        'run',
        'pipelines/eval.yaml',
        ...set({
          prep_dir: prepDir,
          run_dir: runDir,
          semantic_ids: semanticIds,
          out_dir: evalDir,
          sasrec: 'false',
          max_users: 60,
          device: 'cpu',
        }),
      ],
      { env },
    );
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    const metrics = JSON.parse(readFileSync(path.join(evalDir, 'eval_metrics.json'), 'utf8'));
    const recall = (model: string): number => metrics.models[model].recall['10'];
    t.diagnostic(`Recall@10: llm ${recall('llm')}, most_popular ${recall('most_popular')}`);
    assert.ok(recall('llm') > recall('most_popular'), `llm ${recall('llm')} vs most_popular ${recall('most_popular')}`);
    assert.ok(existsSync(path.join(evalDir, 'eval_report.html')), 'the report is written');
  },
);
