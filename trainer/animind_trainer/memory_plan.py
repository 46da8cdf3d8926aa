"""Micro-batch rows and gradient checkpointing chosen from the GPU's memory budget.

The feeder sends each optimizer step's rows; how many of them go through the model at once is
a memory question: larger micro-batches keep the GPU's matrix units busy, and recomputing
activations (gradient checkpointing) frees memory for them at the cost of a third forward pass.
Without checkpointing a LoRA step costs ~4 units of work per token (forward 2, backward through
the frozen weights 2); with it ~6. So the plan is: no checkpointing when a micro-batch of at
least MIN_TOKENS_UNCHECKPOINTED tokens fits, else checkpointing with the largest micro-batch that
fits. Only divisors of the step's rows are considered, so every micro-batch has the same shape.

The activation estimate counts what a Qwen2 decoder layer keeps for backward per token with
frozen bf16 weights, fp32 LoRA adapters and bf16 autocast (docs/train.md has the sum):
test_memory_plan.py holds it to the tensors autograd really saves, measured on the CPU, outside
the attention kernel, whose share (q, k, v and output for a flash-style kernel) is counted apart.
`SAFETY` leaves room for what it misses (allocator rounding, workspaces, the head's chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_TOKENS_UNCHECKPOINTED = 2048  # below this a 14B layer's matmuls are too small to keep an H100 busy
SAFETY = 0.85  # share of the budget the plan may fill
HEAD_CHUNK_BYTES = 256 << 20  # the chunked loss's logits chunk (chunked_loss.py)
BYTES_PER_TRAINABLE = 16  # fp32 weight + gradient + AdamW's two moments


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int

    @classmethod
    def of(cls, config) -> ModelShape:
        """From a transformers config (Qwen2/Llama names)."""
        return cls(
            hidden=config.hidden_size,
            layers=config.num_hidden_layers,
            intermediate=config.intermediate_size,
            heads=config.num_attention_heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        )


@dataclass(frozen=True)
class MemoryPlan:
    micro_batch_rows: int
    gradient_checkpointing: bool
    budget_bytes: int
    estimate_bytes: int  # activations of one micro-batch as planned

    def describe(self) -> str:
        gib = 1 << 30
        checkpointing = "on" if self.gradient_checkpointing else "off"
        return (
            f"micro-batch of {self.micro_batch_rows} rows, gradient checkpointing {checkpointing}: "
            f"~{self.estimate_bytes / gib:.1f} GiB of activations in a {self.budget_bytes / gib:.1f} GiB budget"
        )


def attention_bytes_per_token(shape: ModelShape, itemsize: int) -> int:
    """What a flash-style kernel (varlen, flex) keeps: q, k, v and the output (its log-sum-exp is a
    float a head, left out). It keeps no seq x seq scores."""
    kv = shape.hidden * shape.kv_heads // shape.heads
    return itemsize * (2 * shape.hidden + 2 * kv)


def layer_bytes_per_token(shape: ModelShape, lora_targets: tuple[str, ...], lora_dropout: float, itemsize: int) -> int:
    """Bytes one decoder layer keeps for backward per token, without checkpointing: the frozen
    projections keep nothing of their inputs (no weight gradient), but each LoRA target keeps its own
    copy of its input in the compute dtype (peft casts it to the fp32 adapter's dtype, autocast back)
    and, with dropout, a one-byte mask of it."""
    h, i = shape.hidden, shape.intermediate
    norms = 2 * 4 * h  # the two RMSNorms keep their fp32 inputs
    mlp = itemsize * 3 * i  # gate (the activation's input), its activation and up (the product's inputs)
    lora = 0
    for target in lora_targets:
        width = i if target == "down_proj" else h
        lora += (itemsize + (1 if lora_dropout > 0 else 0)) * width
    return norms + attention_bytes_per_token(shape, itemsize) + mlp + lora


def plan_micro_batch(
    shape: ModelShape,
    *,
    seq_len: int,
    step_rows: int,
    budget_bytes: int,
    lora_targets: tuple[str, ...],
    lora_dropout: float,
    itemsize: int = 2,
    rows: int | None = None,
    checkpointing: bool | None = None,
) -> MemoryPlan:
    """The plan for micro-batches of `seq_len` tokens a row, out of `step_rows` rows a step (this
    rank's), in `budget_bytes` left after the weights, the trainable state and the loss's chunk.
    `rows` or `checkpointing`, when the config sets them, are kept and the other is chosen."""
    per_token_layer = layer_bytes_per_token(shape, lora_targets, lora_dropout, itemsize)
    full = per_token_layer * shape.layers * seq_len  # one row, every layer kept
    # Checkpointing keeps each layer's input, and one layer's activations while it is recomputed.
    checkpointed = (itemsize * shape.hidden * shape.layers + per_token_layer) * seq_len
    usable = int(budget_bytes * SAFETY)
    candidates = [rows] if rows else [r for r in range(step_rows, 0, -1) if step_rows % r == 0]
    if checkpointing is not True:
        fits = next((r for r in candidates if r * full <= usable), None)
        # Rows set by the config: recompute only if they do not fit.
        wanted = rows * seq_len if rows else min(MIN_TOKENS_UNCHECKPOINTED, step_rows * seq_len)
        enough = fits is not None and fits * seq_len >= wanted
        if checkpointing is False or enough:
            chosen = fits or candidates[-1]  # checkpointing off by config: the smallest if none fits
            return MemoryPlan(chosen, False, budget_bytes, chosen * full)
    chosen = next((r for r in candidates if r * checkpointed <= usable), candidates[-1])
    return MemoryPlan(chosen, True, budget_bytes, chosen * checkpointed)


def fixed_costs(trainable_params: int) -> int:
    """What training needs beside the activations and the weights already loaded."""
    return trainable_params * BYTES_PER_TRAINABLE + HEAD_CHUNK_BYTES
