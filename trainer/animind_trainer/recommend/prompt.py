"""The model's input for a Task B prompt: exactly what training put before the 8 level tokens.

Training (transforms/train/chat-template.ts) used prompt = the user turn rendered with
add_generation_prompt=True, and completion = the rest of the conversation's render: whatever the
template writes in the assistant turn before the text (Qwen3: "<think>\\n\\n</think>\\n\\n"), the 8
level tokens, the end of turn. So the input here is the generation prompt plus that assistant
prefix, each encoded on its own without special tokens, as training encoded prompt and completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Stands in for the assistant's text to find where the template puts it (as on the TypeScript side).
PLACEHOLDER = "\x00animind-assistant-text\x00"
_PROBE = "\x00animind-user-text\x00"


@dataclass(frozen=True)
class PromptFormat:
    tokenizer: PreTrainedTokenizerBase
    template_kwargs: dict
    has_template: bool
    assistant_prefix: str  # "" without a template, or when the template's generation prompt already opens the turn

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase, **template_kwargs) -> PromptFormat:
        """`template_kwargs` go to apply_chat_template (tests pass another model's chat_template)."""
        has_template = bool(template_kwargs.get("chat_template") or tokenizer.chat_template)
        fmt = cls(tokenizer, template_kwargs, has_template, "")
        if not has_template:
            return fmt
        user = [{"role": "user", "content": _PROBE}]
        generation = fmt._render(user, True)
        marked = fmt._render([*user, {"role": "assistant", "content": PLACEHOLDER}], False)
        text_at = marked.find(PLACEHOLDER)
        if text_at < 0:
            raise ValueError("the chat template drops the assistant's text, so its turn cannot be located")
        # Where the conversation stops matching the generation prompt (all of it for Qwen3; for
        # DeepSeek-R1-Distill, whose generation prompt adds "<think>\n", the end of its assistant tag).
        shared = 0
        while shared < min(len(generation), text_at) and generation[shared] == marked[shared]:
            shared += 1
        return cls(tokenizer, template_kwargs, has_template, marked[shared:text_at])

    def _render(self, messages, generation: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation, tokenize=False, **self.template_kwargs
        )

    def text(self, prompt: str) -> tuple[str, str]:
        """(the training prompt, the assistant prefix): the model writes the level tokens after both."""
        if not self.has_template:
            return f"{self.tokenizer.bos_token or ''}{prompt}\n", ""
        return self._render([{"role": "user", "content": prompt}], True), self.assistant_prefix

    def input_ids(self, prompts: list[str]) -> list[list[int]]:
        texts = [self.text(p) for p in prompts]
        encode = lambda batch: self.tokenizer(batch, add_special_tokens=False)["input_ids"]  # noqa: E731
        heads = encode([t for t, _ in texts])
        tail = encode([self.assistant_prefix])[0] if self.assistant_prefix else []
        return [head + tail for head in heads]


def task_b_prompt(semantic_ids: list[str], sentiments: list[str]) -> str:
    """The Task B `last`-mask prompt of a history (transforms/prep/task-b.ts): each watch with its
    sentiment, then the masked next one."""
    parts = [
        f"{'A user' if i == 0 else 'then'} watched <anime_start>{sid}<anime_end> {sentiment}"
        for i, (sid, sentiment) in enumerate(zip(semantic_ids, sentiments, strict=True))
    ]
    parts.append(f"{'then' if parts else 'A user'} watched <anime_start>[MASK]<anime_end>")
    return " ".join(parts)
