"""Which modules LoRA wraps when the model's names differ from config.lora.target_modules.

A dry run often trains a small stand-in of another architecture (the default
`sshleifer/tiny-gpt2` is GPT-2: c_attn, c_proj, c_fc, no q_proj ...), so its LoRA falls back to
the model's own attention/MLP linear layers and says so; a full run trains the real model, where
a target list that does not match is a configuration error."""

import io
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from animind_trainer.batch import decode_batch
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings
from animind_trainer.errors import WorkerError
from animind_trainer.lora import make_trainable
from animind_trainer.loss import completion_loss_sum
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.protocol import EventWriter
from animind_trainer.runtime import Runtime
from frames import batch, example_row, pack

VOCAB, NEW = 400, [390, 391, 392]
DEFAULT_LORA = LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES)
CPU = Runtime(torch.device("cpu"), "fp32", None, None)


def tiny_gpt2():
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    return GPT2LMHeadModel(config)


def logged(events: io.StringIO) -> list[str]:
    return [e["message"] for e in map(json.loads, events.getvalue().splitlines()) if e["event"] == "log"]


def wrapped(trainable) -> set[str]:
    """Last name component of every module that got a LoRA adapter."""
    return {name.split(".")[-1] for name, m in trainable.model.named_modules() if hasattr(m, "lora_A")}


def test_dry_run_on_gpt2_adapts_the_targets_and_says_so_once():
    events = io.StringIO()
    trainable = make_trainable(tiny_gpt2(), DEFAULT_LORA, NEW, False, dry_run=True, events=EventWriter(events))
    assert wrapped(trainable) == {"c_attn", "c_proj", "c_fc"}  # attention and MLP, not the lm_head
    assert logged(events) == [
        "dry run: the model has no q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; "
        "LoRA targets its own attention/MLP linear layers instead: c_attn, c_proj, c_fc"
    ]


def test_the_adapted_gpt2_dry_run_trains():
    trainable = make_trainable(tiny_gpt2(), DEFAULT_LORA, NEW, False, dry_run=True)
    rows = pack([example_row([1, 390, 2], [391, 3]), example_row([4, 5], [392, 6, 7])], 16, 0)
    micro = decode_batch(batch(rows, True, rows.completion_tokens)[5:], "BATCH", VOCAB)
    loss_sum, tokens = completion_loss_sum(trainable.causal_lm, micro, CPU)
    loss_sum.backward()
    assert tokens == 5 and torch.isfinite(loss_sum)
    lora_grads = [p.grad for n, p in trainable.model.named_parameters() if "lora_B" in n]
    assert len(lora_grads) == 2 * 4  # 2 blocks x (c_attn, attn c_proj, c_fc, mlp c_proj)
    assert all(g is not None and g.abs().sum() > 0 for g in lora_grads)


def test_full_run_with_targets_the_model_lacks_is_one_error_naming_what_it_has():
    with pytest.raises(WorkerError) as error:
        make_trainable(tiny_gpt2(), DEFAULT_LORA, NEW, False, dry_run=False, events=EventWriter(io.StringIO()))
    message = str(error.value)
    assert "\n" not in message
    assert message == (
        "config.lora.target_modules not found in the model: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
        "down_proj (its attention/MLP linear layers are: c_attn, c_proj, c_fc)"
    )


def test_dry_run_on_the_tiny_qwen_keeps_matching_targets_silently():
    events = io.StringIO()
    trainable = make_trainable(
        build_tiny_model(VOCAB), DEFAULT_LORA, NEW, False, dry_run=True, events=EventWriter(events)
    )
    assert wrapped(trainable) == set(DEFAULT_TARGET_MODULES)
    assert logged(events) == []


def test_dry_run_on_the_tiny_qwen_with_gpt2_targets_adapts_to_its_projections():
    events = io.StringIO()
    gpt2_names = LoraSettings(True, 4, 8, 0.0, ("c_attn", "c_proj"))
    trainable = make_trainable(
        build_tiny_model(VOCAB), gpt2_names, NEW, False, dry_run=True, events=EventWriter(events)
    )
    assert wrapped(trainable) == set(DEFAULT_TARGET_MODULES)
    assert logged(events) == [
        "dry run: the model has no c_attn, c_proj; LoRA targets its own attention/MLP linear layers instead: "
        "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
    ]


def test_full_run_on_the_tiny_qwen_names_the_missing_target_and_the_layers_found():
    one_wrong = LoraSettings(True, 4, 8, 0.0, ("q_proj", "w_qkv"))
    with pytest.raises(
        WorkerError, match=r"not found in the model: w_qkv \(its attention/MLP linear layers are: q_proj, k_proj"
    ):
        make_trainable(build_tiny_model(VOCAB), one_wrong, NEW, False)
