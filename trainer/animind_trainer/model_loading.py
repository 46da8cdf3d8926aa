"""Load the base causal LM, build a random one of a real shape (`random:<preset>`), or build the tiny
local stand-in used by dry runs and tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from .errors import WorkerError
from .model_presets import PRESETS, TINY_SHAPE, build_random_model
from .protocol import EventWriter
from .runtime import Runtime

TINY_MODEL_NAME = "tiny-random-qwen2"
# The tiny model's weights are a pure function of this seed and its vocabulary size,
# so a trained tiny run can be reloaded without saving the random base weights.
TINY_SEED = 20240611
RANDOM_PREFIX = "random:"  # base_model random:<preset>: a preset's shape with random weights (model_presets.py)
ATTENTION = "sdpa"
_MEAN_CHUNK_ROWS = 8192  # rows upcast to fp32 at a time: a 14B model's whole embedding would be ~3 GB


@dataclass(frozen=True)
class BaseModel:
    model: torch.nn.Module
    name: str
    tiny: bool


def build_tiny_model(vocab_size: int, attention: str = ATTENTION) -> Qwen2ForCausalLM:
    """Random Qwen2 with the real module names (q_proj ... down_proj), built on the CPU in fp32."""
    config = Qwen2Config(vocab_size=vocab_size, tie_word_embeddings=False, **TINY_SHAPE)
    config._attn_implementation = attention
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return Qwen2ForCausalLM(config).float()


def _from_pretrained(name: str, token: str | None, runtime: Runtime):
    # transformers reports a missing local directory as an invalid hub repo id.
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise OSError(f"no such directory {name}")
    placement = {"device_map": {"": str(runtime.device)}} if runtime.device.type == "cuda" else {}
    return AutoModelForCausalLM.from_pretrained(
        name, token=token, dtype=runtime.dtype, attn_implementation=ATTENTION, **placement
    )


def load_base_model(
    name: str,
    *,
    token: str | None,
    runtime: Runtime,
    vocab_size: int,
    dry_run: bool,
    tiny_requested: bool,
    events: EventWriter,
) -> BaseModel:
    """Hub id, local path or `random:<preset>`; a dry run falls back to the tiny model rather than
    failing to load a checkpoint.

    `vocab_size` is the tokenizer's length: a checkpoint's rows past it are padding (see
    reset_padding_rows)."""
    if tiny_requested:
        events.log("info", f"tiny_model requested: using a local {TINY_MODEL_NAME} instead of {name}")
    elif name.startswith(RANDOM_PREFIX):
        return _random_model(name, vocab_size, runtime, events)
    else:
        try:
            model = _from_pretrained(name, token, runtime)
        except (OSError, ValueError, RuntimeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if not dry_run:
                raise WorkerError(f"cannot load base model {name}: {reason}") from None
            events.log("warning", f"dry run: cannot load {name} ({reason}); using a local {TINY_MODEL_NAME}")
        else:
            padding = reset_padding_rows(model, vocab_size)
            if padding:
                events.log(
                    "info",
                    f"{name} has {padding} padding rows past the tokenizer's {vocab_size} tokens: "
                    "set to the vocabulary's mean row, so the added tokens that land there start like the others",
                )
            return BaseModel(model, name, tiny=False)
    tiny = build_tiny_model(vocab_size).to(runtime.device, runtime.dtype)
    return BaseModel(tiny, TINY_MODEL_NAME, tiny=True)


def _random_model(name: str, vocab_size: int, runtime: Runtime, events: EventWriter) -> BaseModel:
    """A preset's shape with seeded random weights: what a speed measurement needs, never a download."""
    preset = name.removeprefix(RANDOM_PREFIX)
    if preset not in PRESETS:
        raise WorkerError(
            f"config.base_model {name}: unknown preset {preset!r}; "
            f"expected one of {', '.join(RANDOM_PREFIX + p for p in PRESETS)}"
        )
    events.log("info", f"random weights, preset {preset} ({PRESETS[preset].description}), no download")
    model = build_random_model(preset, vocab_size, runtime.device, runtime.dtype, ATTENTION)
    return BaseModel(model, name, tiny=False)


def reset_padding_rows(model: torch.nn.Module, vocab_size: int) -> int:
    """Set the embedding and head rows past the tokenizer's vocabulary to the vocabulary's mean row.

    Checkpoints such as Qwen2.5's and DeepSeek-R1-Distill-Qwen's pad their matrices beyond the
    tokenizer (151,936 or 152,064 rows for ~151,665 tokens). The added tokens take the
    tokenizer's next ids, so the first of them land on these never-trained rows, which the
    resize keeps as they are, while the rows it appends start near the vocabulary's mean row
    (transformers' mean resizing). Setting the padding to that mean makes every added token
    start alike, and leaves the mean the resize computes over all rows unchanged.
    Returns how many rows were padding.
    """
    embedding, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    padding = embedding.shape[0] - vocab_size
    if padding <= 0:
        return 0
    for weight in (embedding,) if head is embedding else (embedding, head):
        with torch.no_grad():
            total = torch.zeros(weight.shape[1], dtype=torch.float32, device=weight.device)
            for start in range(0, vocab_size, _MEAN_CHUNK_ROWS):
                total += weight[start : min(start + _MEAN_CHUNK_ROWS, vocab_size)].sum(dim=0, dtype=torch.float32)
            weight[vocab_size:] = (total / vocab_size).to(weight.dtype)
    return padding
