"""The decoding input is the training sequence up to the semantic ID: the generation prompt, then
what the chat template writes in the assistant turn before the text, encoded as training encoded them."""

import copy
import json

import pytest

from animind_trainer.recommend.prompt import PromptFormat, task_b_prompt
from recommend_world import loaded
from worker_process import REPO_ROOT

DEEPSEEK = REPO_ROOT / "test" / "train" / "fixtures" / "deepseek-r1-distill-qwen" / "tokenizer_config.json"
SID = "<L1_5><L2_17><L3_0><L4_2047><L5_9><L6_1><L7_300><L8_12>"
LEVEL_TOKENS = SID.replace("><", ">\n<").split("\n")
PROMPT = task_b_prompt([SID], ["<liked>"])
ASSISTANT = "<\uff5cAssistant\uff5c>"  # DeepSeek's tag, with full-width bars


@pytest.fixture(scope="module")
def tokenizer():
    return loaded()[1]


def training_ids(tokenizer, prompt: str, completion: str) -> list[int]:
    """As transforms/train/tokenize.ts: prompt and completion encoded separately, no special tokens."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return encode(prompt) + encode(completion)


def split_like_training(tokenizer, **kwargs) -> tuple[str, str]:
    """transforms/train/chat-template.ts: (generation prompt, rest of the conversation through the end of turn)."""
    user = [{"role": "user", "content": PROMPT}]
    prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False, **kwargs)
    full = tokenizer.apply_chat_template(
        [*user, {"role": "assistant", "content": SID}], add_generation_prompt=False, tokenize=False, **kwargs
    )
    start = len(prompt) if full.startswith(prompt) else full.index(SID)
    eos = kwargs.get("eos_token", tokenizer.eos_token)
    return prompt, full[start : full.rindex(eos) + len(eos)]


def test_qwen3_the_input_is_the_generation_prompt_then_the_empty_think_block(tokenizer):
    fmt = PromptFormat.of(tokenizer)
    assert fmt.assistant_prefix == "<think>\n\n</think>\n\n"
    prompt, completion = split_like_training(tokenizer)
    trained = training_ids(tokenizer, prompt, completion)
    [ids] = fmt.input_ids([PROMPT])
    assert trained[: len(ids)] == ids
    # What the model was taught to write next: the 8 level tokens, one id each.
    assert trained[len(ids) : len(ids) + 8] == tokenizer.convert_tokens_to_ids(LEVEL_TOKENS)


def test_deepseek_r1_distill_the_generation_prompt_already_opens_the_turn_so_no_prefix_follows(tokenizer):
    config = json.loads(DEEPSEEK.read_text(encoding="utf-8"))
    kwargs = {
        "chat_template": config["chat_template"],
        "bos_token": config["bos_token"]["content"],
        "eos_token": config["eos_token"]["content"],
    }
    fmt = PromptFormat.of(tokenizer, **kwargs)
    assert fmt.assistant_prefix == ""
    text, prefix = fmt.text(PROMPT)
    assert text.endswith(ASSISTANT + "<think>\n") and prefix == ""
    prompt, completion = split_like_training(tokenizer, **kwargs)
    assert completion.startswith(SID)
    trained = training_ids(tokenizer, prompt, completion)
    [ids] = fmt.input_ids([PROMPT])
    assert trained[: len(ids)] == ids
    assert trained[len(ids) : len(ids) + 8] == tokenizer.convert_tokens_to_ids(LEVEL_TOKENS)


def test_without_a_chat_template_the_input_is_bos_prompt_and_a_newline(tokenizer):
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    assert PromptFormat.of(plain).text(PROMPT) == (PROMPT + "\n", "")
    plain.bos_token = "<|endoftext|>"
    assert PromptFormat.of(plain).text(PROMPT) == ("<|endoftext|>" + PROMPT + "\n", "")


def test_task_b_prompts_read_like_prep_writes_them():
    # test/prep/task-b.test.ts, with the `last` mask: every watch with its sentiment, then the masked one.
    assert task_b_prompt(["<S3>", "<S65537>", "<S69999>"], ["<liked>", "<watch>", "<dropped>"]) == (
        "A user watched <anime_start><S3><anime_end> <liked> "
        "then watched <anime_start><S65537><anime_end> <watch> "
        "then watched <anime_start><S69999><anime_end> <dropped> "
        "then watched <anime_start>[MASK]<anime_end>"
    )
