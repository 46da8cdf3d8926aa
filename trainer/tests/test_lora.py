"""make_trainable on a small-vocabulary tiny model: what trains, and that it trains the same way
with gradient checkpointing on."""

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from animind_trainer.batch import decode_batch
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings
from animind_trainer.errors import WorkerError
from animind_trainer.lora import make_trainable
from animind_trainer.loss import completion_loss_sum
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.runtime import Runtime
from frames import batch, example_row, pack

VOCAB, NEW = 400, [390, 391, 392, 393, 394, 395]
LORA = LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES)
CPU = Runtime(torch.device("cpu"), "fp32", None, None)


def _batch():
    rows = pack([example_row([1, 390, 2], [391, 3]), example_row([4, 5], [392, 6, 7])], 16, 0)
    return decode_batch(batch(rows, True, rows.completion_tokens)[5:], "BATCH", VOCAB)


def _grads(gradient_checkpointing: bool) -> dict:
    torch.manual_seed(0)
    trainable = make_trainable(build_tiny_model(VOCAB), LORA, NEW, gradient_checkpointing)
    assert trainable.causal_lm.is_activation_checkpointing == gradient_checkpointing
    trainable.model.train()
    loss_sum, _ = completion_loss_sum(trainable.causal_lm, _batch(), CPU)
    loss_sum.backward()
    return {name: p.grad.clone() for name, p in trainable.model.named_parameters() if p.requires_grad}


def test_only_lora_and_new_rows_train():
    trainable = make_trainable(build_tiny_model(VOCAB), LORA, NEW, False)
    names = [name for name, p in trainable.model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or n.endswith("new_rows") for n in names)
    assert sum(n.endswith("new_rows") for n in names) == 2
    assert {n.split(".")[-4] for n in names if "lora_A" in n} == set(DEFAULT_TARGET_MODULES)
    assert trainable.embedding.new_rows.shape == (len(NEW), 64) and not trainable.tied


def test_gradient_checkpointing_gives_the_same_gradients():
    plain, checkpointed = _grads(False), _grads(True)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


def test_lora_disabled_trains_only_the_rows():
    trainable = make_trainable(build_tiny_model(VOCAB), LoraSettings(False, 4, 8, 0.0, ("q_proj",)), NEW, False)
    assert [n for n, p in trainable.model.named_parameters() if p.requires_grad] == [
        "model.embed_tokens.new_rows",
        "lm_head.new_rows",
    ]


def test_tied_embeddings_share_one_set_of_new_rows():
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        tie_word_embeddings=True,
    )
    trainable = make_trainable(Qwen2ForCausalLM(config), LORA, NEW, False)
    assert trainable.tied
    hidden = torch.randn(3, 32)
    logits = trainable.head(hidden)
    assert torch.allclose(logits[:, NEW], hidden @ trainable.embedding.new_rows.T, atol=1e-6)


def test_unknown_target_module_is_named():
    with pytest.raises(WorkerError, match="target_modules not found in the model: w_qkv"):
        make_trainable(build_tiny_model(VOCAB), LoraSettings(True, 4, 8, 0.0, ("q_proj", "w_qkv")), NEW, False)


def test_half_precision_path_keeps_trainable_weights_fp32():
    """The GPU recipe (frozen bf16 base, fp32 adapters and rows, autocast) exercised on the CPU."""
    torch.manual_seed(0)
    reference = make_trainable(build_tiny_model(VOCAB), LORA, NEW, False)
    torch.manual_seed(0)
    mixed = make_trainable(build_tiny_model(VOCAB).to(torch.bfloat16), LORA, NEW, False)
    assert all(p.dtype == torch.float32 for p in mixed.parameters())
    bf16 = Runtime(torch.device("cpu"), "bf16", None, None)
    loss_mixed, _ = completion_loss_sum(mixed.causal_lm, _batch(), bf16)
    loss_mixed.backward()
    loss_fp32, _ = completion_loss_sum(reference.causal_lm, _batch(), CPU)
    assert loss_mixed.dtype == torch.float32
    assert loss_mixed.item() == pytest.approx(loss_fp32.item(), rel=2e-2)
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in mixed.parameters())
