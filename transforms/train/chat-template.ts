import { Template } from '@huggingface/jinja';
import { DataError } from '../../engine/errors.ts';
import type { TokenizerSettings } from './tokenizer-files.ts';

export interface ChatParts {
  prompt: string;
  completion: string;
}

/**
 * Splits one user/assistant exchange, rendered by the model's own chat template, into the prompt
 * (everything up to the assistant's content, including whatever the template puts there, such
 * as an empty think block) and the completion (the content and the end-of-turn token). Text the
 * template adds after the end-of-turn token is dropped: generation stops at that token.
 */
export class ChatFormatter {
  private readonly template: Template | undefined;

  constructor(private readonly settings: TokenizerSettings) {
    this.template = settings.chatTemplate ? new Template(settings.chatTemplate) : undefined;
  }

  get hasTemplate(): boolean {
    return this.template !== undefined;
  }

  format(input: string, output: string): ChatParts {
    const { eosToken, bosToken } = this.settings;
    const completion = output + eosToken;
    if (!this.template) return { prompt: `${bosToken}${input}\n`, completion };
    const rendered = this.template.render({
      messages: [
        { role: 'user', content: input },
        { role: 'assistant', content: output },
      ],
      add_generation_prompt: false,
      bos_token: bosToken,
      eos_token: eosToken,
    });
    const at = rendered.lastIndexOf(completion);
    if (at < 0)
      throw new DataError(
        `the chat template does not render the assistant's text followed by ` +
          `${eosToken} (the template rewrites it), so the completion cannot be located`,
      );
    return { prompt: rendered.slice(0, at), completion };
  }
}
