"""Load the base causal LM, or build the tiny local stand-in used by dry runs and tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from .errors import WorkerError
from .protocol import EventWriter
from .runtime import Runtime

TINY_MODEL_NAME = "tiny-random-qwen2"
# The tiny model's weights are a pure function of this seed and its vocabulary size,
# so a trained tiny run can be reloaded without saving the random base weights.
TINY_SEED = 20240611
TINY_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 32768,
}
ATTENTION = "sdpa"


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
    """Hub id or local path; a dry run falls back to the tiny model rather than failing."""
    if tiny_requested:
        events.log("info", f"tiny_model requested: using a local {TINY_MODEL_NAME} instead of {name}")
    else:
        try:
            return BaseModel(_from_pretrained(name, token, runtime), name, tiny=False)
        except (OSError, ValueError, RuntimeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if not dry_run:
                raise WorkerError(f"cannot load base model {name}: {reason}") from None
            events.log("warning", f"dry run: cannot load {name} ({reason}); using a local {TINY_MODEL_NAME}")
    tiny = build_tiny_model(vocab_size).to(runtime.device, runtime.dtype)
    return BaseModel(tiny, TINY_MODEL_NAME, tiny=True)
