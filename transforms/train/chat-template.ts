import { Template } from '@huggingface/jinja';
import { DataError } from '../../engine/errors.ts';
import type { TokenizerSettings } from './tokenizer-files.ts';

export interface ChatParts {
  prompt: string;
  completion: string;
}

/** Stands in for the assistant's text to find where the template puts it. */
const PLACEHOLDER = '\u0000animind-assistant-text\u0000';

/**
 * Splits one user/assistant exchange, rendered by the model's own chat template, into the prompt
 * the model is trained on and the completion it learns to write.
 *
 * The prompt is exactly what inference feeds the model: the user turn rendered with
 * `add_generation_prompt=True`. The completion is the rest of the whole conversation as the
 * template renders it, up to and including the end-of-turn token, so whatever the template puts
 * in the assistant turn (an empty think block, a rewritten reasoning block) is learned. Text
 * after the end-of-turn token is dropped: generation stops at that token.
 *
 * Some templates open the assistant turn differently for generation than in a rendered
 * conversation (DeepSeek-R1-Distill adds `<think>\n` to the generation prompt only). The prompt
 * still is the generation prompt; the completion is then the assistant turn after its opening.
 */
export class ChatFormatter {
  private readonly template: Template | undefined;

  constructor(private readonly settings: TokenizerSettings) {
    this.template = settings.chatTemplate ? new Template(settings.chatTemplate) : undefined;
  }

  get hasTemplate(): boolean {
    return this.template !== undefined;
  }

  /** The template's rendering of these turns, as Hugging Face's apply_chat_template gives it. */
  render(messages: { role: string; content: string }[], addGenerationPrompt: boolean): string {
    if (!this.template) throw new Error('the tokenizer has no chat template');
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.settings.bosToken,
      eos_token: this.settings.eosToken,
    });
  }

  /** `system`, when given, is the conversation's system message (general-mix rows carry one). */
  format(input: string, output: string, system?: string): ChatParts {
    const { eosToken, bosToken } = this.settings;
    if (!this.template)
      return { prompt: `${bosToken}${system ? `${system}\n` : ''}${input}\n`, completion: output + eosToken };
    const before = system ? [{ role: 'system', content: system }] : [];
    const user = { role: 'user', content: input };
    const prompt = this.render([...before, user], true);
    const full = this.render([...before, user, { role: 'assistant', content: output }], false);
    const start = full.startsWith(prompt) ? prompt.length : this.assistantTextStart([...before, user], prompt, full);
    const end = full.lastIndexOf(eosToken);
    if (end < start) throw new DataError(`the chat template does not end the assistant's turn with ${eosToken}`);
    return { prompt, completion: full.slice(start, end + eosToken.length) };
  }

  /**
   * Where the assistant's text starts in a conversation render that does not begin with the
   * generation prompt: after the longest common start of the two, but never past the point
   * where the template puts the assistant's text.
   */
  private assistantTextStart(turns: { role: string; content: string }[], prompt: string, full: string): number {
    const marked = this.render([...turns, { role: 'assistant', content: PLACEHOLDER }], false);
    const textAt = marked.indexOf(PLACEHOLDER);
    if (textAt < 0 || !full.startsWith(marked.slice(0, textAt)))
      throw new DataError("the chat template renders the conversation so that the assistant's turn cannot be located");
    let shared = 0;
    while (shared < textAt && prompt[shared] === full[shared]) shared++;
    return shared;
  }
}
