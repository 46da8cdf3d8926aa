"""The worker's own tokenizer code, run on the rows the TypeScript side encoded.

argv: tokenizer_dir semantic_vocab.json rows.jsonl; prints one JSON object: the added-token ids
and the rows whose token ids or chat rendering differ from the TypeScript side's.
"""

import json
import sys

from animind_trainer.tokens import extend_tokenizer, load_tokenizer

tokenizer_dir, vocab_file, rows_file = sys.argv[1:]
tokenizer = load_tokenizer(tokenizer_dir, None)
with open(vocab_file, encoding="utf-8") as f:
    added_ids = extend_tokenizer(tokenizer, json.load(f)["tokens"])
with open(rows_file, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]

prompts = tokenizer([r["prompt"] for r in rows], add_special_tokens=False)["input_ids"]
completions = tokenizer([r["completion"] for r in rows], add_special_tokens=False)["input_ids"]
id_mismatches = [
    r["key"] for r, p, c in zip(rows, prompts, completions) if p + c != r["ids"] or len(p) != r["prompt_len"]
]
template_mismatches = [
    r["key"]
    for r in rows
    if not tokenizer.apply_chat_template(
        [{"role": "user", "content": r["input"]}, {"role": "assistant", "content": r["output"]}], tokenize=False
    ).startswith(r["prompt"] + r["completion"])
]
print(json.dumps({"rows": len(rows), "added_ids": added_ids, "id_mismatches": id_mismatches, "template_mismatches": template_mismatches}))
