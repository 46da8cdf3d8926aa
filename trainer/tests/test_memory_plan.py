"""The default micro-batch and gradient checkpointing, chosen from the GPU's memory budget.

A LoRA step without checkpointing costs ~4 units of work a token, with it ~6: the plan keeps
checkpointing off while a micro-batch of at least 2,048 tokens fits, and otherwise turns it on
and takes the largest micro-batch that fits (always a divisor of the step's rows)."""

from types import SimpleNamespace

from animind_trainer.config import DEFAULT_TARGET_MODULES
from animind_trainer.memory_plan import ModelShape, fixed_costs, layer_bytes_per_token, plan_micro_batch

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
    # ~16.7 GB of activations a 1,024-token row: the estimate the choice rests on.
    assert 16 * GIB > layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.05, 2) * 48 * 1024 > 15 * GIB


def test_1_5b_on_an_h100_trains_eight_rows_at_a_time():
    budget = H100 - WEIGHTS_1_5B - fixed_costs(TRAINABLE_1_5B)
    chosen = plan(QWEN_1_5B, budget)
    assert (chosen.micro_batch_rows, chosen.gradient_checkpointing) == (8, False)


def test_a_budget_too_small_for_2048_tokens_turns_checkpointing_on_with_the_largest_micro_batch_that_fits():
    chosen = plan(QWEN_14B, 10 * GIB)
    assert (chosen.micro_batch_rows, chosen.gradient_checkpointing) == (8, True)
    assert chosen.estimate_bytes <= 10 * GIB


def test_a_setting_from_the_config_is_kept_and_the_other_is_chosen_around_it():
    budget = H100 - WEIGHTS_14B - fixed_costs(TRAINABLE_14B)
    assert plan(QWEN_14B, budget, checkpointing=True).micro_batch_rows == 16
    assert plan(QWEN_14B, budget, rows=4).gradient_checkpointing is True  # 4 rows do not fit without it
    assert plan(QWEN_14B, budget, rows=1).gradient_checkpointing is False  # 1 row fits: no recomputation


def test_without_lora_dropout_the_inputs_are_not_copied_so_more_fits():
    with_dropout = layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.05, 2)
    assert layer_bytes_per_token(QWEN_14B, DEFAULT_TARGET_MODULES, 0.0, 2) < 0.75 * with_dropout


def test_the_shape_is_read_from_a_transformers_config():
    config = SimpleNamespace(
        hidden_size=5120, num_hidden_layers=48, intermediate_size=13824, num_attention_heads=40, num_key_value_heads=8
    )
    assert ModelShape.of(config) == QWEN_14B
