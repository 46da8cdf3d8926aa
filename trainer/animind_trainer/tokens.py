"""Load the tokenizer, add the 6 special and 16,384 level tokens, size the model to match."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import WorkerError

SPECIAL_COUNT = 6
LEVEL_COUNT = 8 * 2048
# Embedding rows a multiple of 64: aligned matmuls, and the shape vLLM and most checkpoints use.
VOCAB_MULTIPLE = 64
_LEVEL_TOKEN = re.compile(r"<L[1-8]_\d+>")


def load_tokenizer(source: str, token: str | None) -> PreTrainedTokenizerBase:
    """`source` is a hub id, a directory, or a tokenizer.json inside a directory."""
    path = Path(source)
    if path.is_file():
        path = path.parent
    try:
        return AutoTokenizer.from_pretrained(str(path) if path.is_dir() else source, token=token)
    except (OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WorkerError(f"cannot load tokenizer from {source}: {reason}") from None


def validate_added_tokens(tokens) -> list[str]:
    expected = SPECIAL_COUNT + LEVEL_COUNT
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise WorkerError("HELLO added_tokens must be a list of non-empty strings")
    if len(tokens) != expected:
        raise WorkerError(f"HELLO added_tokens has {len(tokens)} tokens, expected {expected} (6 special + 16384 level)")
    if len(set(tokens)) != len(tokens):
        raise WorkerError("HELLO added_tokens contains duplicates")
    bad = next((t for t in tokens[SPECIAL_COUNT:] if not _LEVEL_TOKEN.fullmatch(t)), None)
    if bad is not None:
        raise WorkerError(f"HELLO added_tokens: {bad!r} is not a level token <Lk_c>")
    return tokens


def extend_tokenizer(tokenizer: PreTrainedTokenizerBase, tokens: list[str]) -> list[int]:
    """Add the tokens and return their ids, in the given order; each must be one id."""
    specials, levels = tokens[:SPECIAL_COUNT], tokens[SPECIAL_COUNT:]
    tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
    tokenizer.add_tokens(levels)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    encoded = tokenizer(tokens, add_special_tokens=False)["input_ids"]
    split = next((t for t, i, e in zip(tokens, ids, encoded, strict=False) if e != [i]), None)
    if split is not None:
        raise WorkerError(f"added token {split!r} does not encode to a single id")
    return ids


def resize_embeddings(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> int:
    """Size the embedding and head to the tokenizer, rounded up to a multiple of VOCAB_MULTIPLE.

    Exactly the call a user makes before loading the adapter (outputs.py), so the reloaded
    model has the trained one's shape."""
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=VOCAB_MULTIPLE)
    return model.get_input_embeddings().weight.shape[0]
