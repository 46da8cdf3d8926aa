"""Random-weight Qwen2 models of real shapes, for speed measurements without a download.

A base_model of `random:<preset>` (model_loading.py) builds one of these: the real model's
architecture and sizes, weights drawn from a fixed seed. The shapes are those of the hub
configs (config.json) the presets are named after; the vocabulary is the tokenizer's, as the
worker sizes it before adding its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm, Qwen2RotaryEmbedding

# The dry-run stand-in's shape (model_loading.build_tiny_model), also the `tiny` preset's.
TINY_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 32768,
}
RANDOM_SEED = 20261207
INIT_STD = 0.02  # the configs' initializer_range


@dataclass(frozen=True)
class Preset:
    description: str  # the model whose shape it has
    shape: dict  # Qwen2Config keyword arguments, vocabulary size aside


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "the dry-run stand-in's shape",
        {**TINY_SHAPE, "tie_word_embeddings": False},
    ),
    # deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B's config.json (Qwen2.5-Math-1.5B's layers). Qwen2.5-1.5B has the
    # same layers but ties the head to the embedding and has rope_theta 1e6: the same FLOPs, 233M fewer weights.
    "1.5b": Preset(
        "DeepSeek-R1-Distill-Qwen-1.5B shape",
        {
            "hidden_size": 1536,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "intermediate_size": 8960,
            "max_position_embeddings": 131072,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
    ),
    # Qwen/Qwen2.5-14B's and deepseek-ai/DeepSeek-R1-Distill-Qwen-14B's config.json: the same.
    "14b": Preset(
        "Qwen2.5-14B shape",
        {
            "hidden_size": 5120,
            "num_hidden_layers": 48,
            "num_attention_heads": 40,
            "num_key_value_heads": 8,
            "intermediate_size": 13824,
            "max_position_embeddings": 131072,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
    ),
}


def preset_config(preset: str, vocab_size: int, attention: str) -> Qwen2Config:
    """The preset's config with the given vocabulary; KeyError for an unknown preset."""
    config = Qwen2Config(vocab_size=vocab_size, **PRESETS[preset].shape)
    config._attn_implementation = attention
    return config


def build_random_model(
    preset: str, vocab_size: int, device: torch.device, dtype: torch.dtype, attention: str
) -> Qwen2ForCausalLM:
    """The preset's Qwen2 with weights from a fixed seed, built in `dtype` straight on `device`.

    Built on the meta device and materialised once on the target, so a 14B model on a GPU never
    has a CPU or fp32 copy. Linear and embedding weights are drawn from normal(0, 0.02), biases
    are 0 and norms 1 (transformers' own initialisation), from a generator of their own: the
    global random state is left as it was."""
    config = preset_config(preset, vocab_size, attention)
    with torch.device("meta"):
        model = Qwen2ForCausalLM._from_config(config, dtype=dtype)
    model.to_empty(device=device)
    model.tie_weights()  # to_empty gives every module a tensor of its own: a tied head shares the embedding's again
    generator = torch.Generator(device=device).manual_seed(RANDOM_SEED)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Qwen2RMSNorm):
                module.weight.fill_(1.0)
            elif isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                module.weight.normal_(0.0, INIT_STD, generator=generator)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
    # Its buffers (the inverse frequencies) are computed, not stored: to_empty left them unset.
    model.model.rotary_emb = Qwen2RotaryEmbedding(config).to(device)
    return model
