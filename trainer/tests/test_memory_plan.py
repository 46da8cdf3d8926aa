"""The default micro-batch and gradient checkpointing, chosen from the GPU's memory budget.

A LoRA step without checkpointing costs ~4 units of work a token, with it ~6: the plan keeps
checkpointing off while a micro-batch of at least 2,048 tokens fits, and otherwise turns it on
and takes the largest micro-batch that fits (always a divisor of the step's rows)."""

from types import SimpleNamespace

import pytest
import torch
from transformers import AttentionInterface, Qwen2Config, Qwen2ForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings
from animind_trainer.lora import make_trainable
from animind_trainer.memory_plan import (
    ModelShape,
    attention_bytes_per_token,
    fixed_costs,
    layer_bytes_per_token,
    plan_micro_batch,
)

GIB = 1 << 30
H100 = 81_559 * (1 << 20)  # what an H100 80GB reports as its total memory
# DeepSeek-R1-Distill-Qwen-14B and -1.5B, their vocabularies resized for the 16,390 ID tokens.
QWEN_14B = ModelShape(hidden=5120, layers=48, intermediate=13824, heads=40, kv_heads=8)
QWEN_1_5B = ModelShape(hidden=1536, layers=28, intermediate=8960, heads=12, kv_heads=2)
WEIGHTS_14B = 14_900_000_000 * 2  # bf16
WEIGHTS_1_5B = 1_800_000_000 * 2
TRAINABLE_14B = 237_000_000  # LoRA r16 on the seven projections + the new embedding and head rows
TRAINABLE_1_5B = 43_000_000


def plan(shape, budget, **overrides):
    settings = {"seq_len": 1024, "step_rows": 16, "lora_targets": DEFAULT_TARGET_MODULES, "lora_dropout": 0.05}
    return plan_micro_batch(shape, budget_bytes=budget, **{**settings, **overrides})


def test_14b_on_an_h100_trains_two_rows_at_a_time_without_recomputation():
    budget = H100 - WEIGHTS_14B - fixed_costs(TRAINABLE_14B)
    chosen = plan(QWEN_14B, budget)
    assert (chosen.micro_batch_rows, chosen.gradient_checkpointing) == (2, False)
    assert chosen.estimate_bytes <= budget
    # ~12.9 GiB of activations a 1,024-token row: the estimate the choice rests on.
    assert 13 * GIB > layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.05, 2) * 48 * 1024 > 12.5 * GIB


def test_1_5b_on_an_h100_trains_the_whole_step_at_once():
    budget = H100 - WEIGHTS_1_5B - fixed_costs(TRAINABLE_1_5B)
    chosen = plan(QWEN_1_5B, budget)
    assert (chosen.micro_batch_rows, chosen.gradient_checkpointing) == (16, False)


def test_a_budget_too_small_for_2048_tokens_turns_checkpointing_on_with_the_largest_micro_batch_that_fits():
    chosen = plan(QWEN_14B, 10 * GIB)
    assert (chosen.micro_batch_rows, chosen.gradient_checkpointing) == (8, True)
    assert chosen.estimate_bytes <= 10 * GIB


def test_a_setting_from_the_config_is_kept_and_the_other_is_chosen_around_it():
    budget = H100 - WEIGHTS_14B - fixed_costs(TRAINABLE_14B)
    assert plan(QWEN_14B, budget, checkpointing=True).micro_batch_rows == 16
    assert plan(QWEN_14B, budget, rows=4).gradient_checkpointing is True  # 4 rows do not fit without it
    assert plan(QWEN_14B, budget, rows=1).gradient_checkpointing is False  # 1 row fits: no recomputation


def test_lora_dropout_adds_a_one_byte_mask_of_each_targets_input():
    with_dropout = layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.05, 2)
    masks = 6 * QWEN_14B.hidden + QWEN_14B.intermediate
    assert with_dropout - layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.0, 2) == masks


SMALL = ModelShape(hidden=192, layers=1, intermediate=448, heads=3, kv_heads=1)  # sizes that cannot be confused
OUTSIDE_ATTENTION = "memory_plan_test_sdpa"
_in_attention = [False]


def _sdpa_unmeasured(*args, **kwargs):
    _in_attention[0] = True
    try:
        return sdpa_attention_forward(*args, **kwargs)
    finally:
        _in_attention[0] = False


AttentionInterface.register(OUTSIDE_ATTENTION, _sdpa_unmeasured)


def _saved_bytes_outside_attention(rows: int, seq_len: int) -> int:
    """What autograd keeps for backward of one decoder layer as the worker trains it on a GPU (frozen
    bf16 weights, fp32 LoRA adapters, bf16 autocast), each saved tensor counted once, weights and
    the attention kernel's own tensors left out."""
    config = Qwen2Config(
        vocab_size=600,
        hidden_size=SMALL.hidden,
        num_hidden_layers=1,
        num_attention_heads=SMALL.heads,
        num_key_value_heads=SMALL.kv_heads,
        intermediate_size=SMALL.intermediate,
    )
    config._attn_implementation = OUTSIDE_ATTENTION
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    trainable = make_trainable(model, LoraSettings(True, 8, 16, 0.0, DEFAULT_TARGET_MODULES), [590, 591], False)
    weights = {p.untyped_storage().data_ptr() for p in trainable.model.parameters()}
    weight_shapes = {s for p in trainable.model.parameters() for s in (tuple(p.shape), tuple(p.shape)[::-1])}
    saved: dict[tuple, int] = {}

    decoder = trainable.causal_lm.get_decoder()
    hidden = torch.randn(rows, seq_len, SMALL.hidden, dtype=torch.bfloat16, requires_grad=True)
    positions = torch.arange(seq_len).expand(rows, seq_len)
    rotary = decoder.rotary_emb(hidden, positions)
    # Not per layer: the rotary cos and sin are computed once a forward and shared by every layer.
    shared = weights | {t.untyped_storage().data_ptr() for t in rotary}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        # Shapes of weights: autocast's bf16 copies of the fp32 adapters.
        if (
            not _in_attention[0]
            and tensor.untyped_storage().data_ptr() not in shared
            and (tuple(tensor.shape) not in weight_shapes)
        ):
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            saved[key] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        decoder.layers[0](hidden, attention_mask=None, position_ids=positions, position_embeddings=rotary)
    return sum(saved.values())


def test_the_activation_estimate_is_what_autograd_really_keeps():
    rows, seq_len = 3, 40
    measured = _saved_bytes_outside_attention(rows, seq_len) / (rows * seq_len)
    estimate = layer_bytes_per_token(SMALL, DEFAULT_TARGET_MODULES, 0.0, 2) - attention_bytes_per_token(SMALL, 2)
    # Left out of the estimate: the adapters' rank-r intermediates and the norms' 1/rms, ~2% here.
    assert estimate == pytest.approx(measured, rel=0.03)


def test_the_shape_is_read_from_a_transformers_config():
    config = SimpleNamespace(
        hidden_size=5120, num_hidden_layers=48, intermediate_size=13824, num_attention_heads=40, num_key_value_heads=8
    )
    assert ModelShape.of(config) == QWEN_14B
