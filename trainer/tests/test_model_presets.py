"""base_model random:<preset>: a real model's shape with seeded random weights (bench:train).

Only the tiny preset is materialised here; the 1.5b and 14b shapes are checked on the meta
device, where building them costs nothing."""

import io
import json

import pytest
import torch
from transformers import Qwen2ForCausalLM

from animind_trainer.errors import WorkerError
from animind_trainer.model_loading import TINY_SHAPE, load_base_model
from animind_trainer.model_presets import build_random_model, preset_config
from animind_trainer.protocol import EventWriter
from animind_trainer.runtime import Runtime

VOCAB = 300
CPU = Runtime(torch.device("cpu"), "fp32", None, None)


def load(name: str, events: io.StringIO):
    return load_base_model(
        name,
        token=None,
        runtime=CPU,
        vocab_size=VOCAB,
        dry_run=True,
        tiny_requested=False,
        events=EventWriter(events),
    )


def test_random_tiny_builds_the_tiny_shape_and_runs_forward():
    events = io.StringIO()
    base = load("random:tiny", events)
    assert (base.name, base.tiny) == ("random:tiny", False)  # not the dry-run stand-in
    config = base.model.config
    assert {key: getattr(config, key) for key in TINY_SHAPE} == TINY_SHAPE
    assert base.model.get_input_embeddings().weight.shape == (VOCAB, TINY_SHAPE["hidden_size"])
    logits = base.model(torch.tensor([[1, 2, 3, 4]])).logits
    assert logits.shape == (1, 4, VOCAB) and torch.isfinite(logits).all()
    messages = [e["message"] for e in map(json.loads, events.getvalue().splitlines()) if e["event"] == "log"]
    assert messages == ["random weights, preset tiny (the dry-run stand-in's shape), no download"]


def test_random_weights_are_seeded_and_initialised_like_transformers():
    first = build_random_model("tiny", VOCAB, torch.device("cpu"), torch.float32, "sdpa")
    second = build_random_model("tiny", VOCAB, torch.device("cpu"), torch.float32, "sdpa")
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    layer = first.model.layers[0]
    assert torch.equal(layer.input_layernorm.weight, torch.ones(TINY_SHAPE["hidden_size"]))
    assert torch.equal(layer.self_attn.q_proj.bias, torch.zeros_like(layer.self_attn.q_proj.bias))
    assert abs(layer.mlp.up_proj.weight.detach().std().item() - 0.02) < 0.002
    # The rotary frequencies are computed on the device, not left as to_empty's garbage.
    inv_freq = first.model.rotary_emb.inv_freq
    assert inv_freq.dtype == torch.float32 and float(inv_freq[0]) == 1.0


def test_an_unknown_preset_is_one_line_naming_the_presets():
    with pytest.raises(WorkerError) as error:
        load("random:7b", io.StringIO())  # even in a dry run: no fallback to the tiny model
    assert str(error.value) == (
        "config.base_model random:7b: unknown preset '7b'; expected one of random:tiny, random:1.5b, random:14b"
    )


@pytest.mark.parametrize(
    ("preset", "vocab", "dims", "params"),
    [
        (
            "1.5b",
            151936,
            (1536, 28, 12, 2, 8960, False, 10000.0, 1e-6, 131072),
            1_777_088_000,  # deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B: 1.78B
        ),
        (
            "14b",
            152064,
            (5120, 48, 40, 8, 13824, False, 1000000.0, 1e-5, 131072),
            14_770_033_664,  # Qwen2.5-14B: 14.7B
        ),
    ],
)
def test_large_presets_have_the_hub_configs_dims(preset, vocab, dims, params):
    config = preset_config(preset, vocab, "sdpa")
    assert (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.intermediate_size,
        config.tie_word_embeddings,
        config.rope_parameters["rope_theta"],
        config.rms_norm_eps,
        config.max_position_embeddings,
    ) == dims
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == params
