"""The worker's own tokenizer code, run on the rows the TypeScript side encoded.

argv: tokenizer_dir semantic_vocab.json rows.jsonl deepseek_tokenizer_config.json; prints one JSON
object: the added-token ids and the rows whose token ids or chat rendering differ from the
TypeScript side's. The chat checks: the prompt is apply_chat_template(add_generation_prompt=True) of
the user turn, and the completion is the rest of the conversation's render, for the base
tokenizer's own template and for DeepSeek-R1-Distill's (whose generation prompt adds "<think>\n").
"""

import json
import sys

from animind_trainer.tokens import extend_tokenizer, load_tokenizer

tokenizer_dir, vocab_file, rows_file, deepseek_file = sys.argv[1:]
tokenizer = load_tokenizer(tokenizer_dir, None)
with open(vocab_file, encoding="utf-8") as f:
    added_ids = extend_tokenizer(tokenizer, json.load(f)["tokens"])
with open(rows_file, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]

prompts = tokenizer([r["prompt"] for r in rows], add_special_tokens=False)["input_ids"]
completions = tokenizer([r["completion"] for r in rows], add_special_tokens=False)["input_ids"]
id_mismatches = [
    r["key"]
    for r, p, c in zip(rows, prompts, completions, strict=True)
    if p + c != r["ids"] or len(p) != r["prompt_len"]
]
with open(deepseek_file, encoding="utf-8") as f:
    deepseek = json.load(f)
deepseek_kwargs = {
    "chat_template": deepseek["chat_template"],
    "bos_token": deepseek["bos_token"]["content"],
    "eos_token": deepseek["eos_token"]["content"],
}


def render(row, with_answer, **kwargs):
    messages = [{"role": "user", "content": row["input"]}]
    if with_answer:
        messages.append({"role": "assistant", "content": row["output"]})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not with_answer, **kwargs)


template_mismatches = [
    r["key"]
    for r in rows
    if render(r, False) != r["prompt"] or not render(r, True).startswith(r["prompt"] + r["completion"])
]
deepseek_mismatches = [
    r["key"]
    for r in rows
    if render(r, False, **deepseek_kwargs) != r["deepseek"]["prompt"]
    or render(r, True, **deepseek_kwargs)
    != r["deepseek"]["prompt"].removesuffix("<think>\n") + r["deepseek"]["completion"]
]
print(
    json.dumps(
        {
            "rows": len(rows),
            "added_ids": added_ids,
            "id_mismatches": id_mismatches,
            "template_mismatches": template_mismatches,
            "deepseek_mismatches": deepseek_mismatches,
        }
    )
)
