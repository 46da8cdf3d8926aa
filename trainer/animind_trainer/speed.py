"""How the model runs fast: attention kernel, loss, micro-batch and checkpointing, compilation.

Each choice is a config key with a plain path that its test compares against (docs/train.md,
"Speed"); `configure_speed` resolves them once the model is built and says what it chose in one
log line, and the run summary's `performance` records it.
"""

from __future__ import annotations

import math
import resource
import sys
from dataclasses import dataclass

import torch

from .config import TrainConfig
from .lora import TrainableModel, enable_checkpointing
from .memory_plan import MemoryPlan, ModelShape, fixed_costs, plan_micro_batch
from .packed_attention import FLEX, VARLEN, resolve_attention, use_attention
from .protocol import EventWriter
from .ranks import Ranks
from .runtime import Runtime


@dataclass(frozen=True)
class Speed:
    attention: str  # the transformers attention implementation in use
    head_loss: str
    # Rows trained at once out of the step's rows; None: the feeder's micro-batches as sent.
    micro_batch_rows: int | None
    gradient_checkpointing: bool
    compile: bool
    # Regrouped micro-batches as one row of their examples end to end, padding left out
    # (micro_batches.py): where the attention follows examples, not rows (varlen, flex).
    padding_free: bool
    plan: MemoryPlan | None = None


def step_rows_per_rank(config: TrainConfig, ranks: Ranks) -> int:
    """The most rows one rank gets of a step: micro-batches are dealt round-robin over the ranks."""
    micro_batches = math.ceil(config.gradient_accumulation_steps / ranks.world_size)
    return micro_batches * config.per_device_train_batch_size


def configure_speed(
    config: TrainConfig, runtime: Runtime, trainable: TrainableModel, ranks: Ranks, events: EventWriter
) -> Speed:
    causal_lm = trainable.causal_lm
    attention = resolve_attention(config.attention, runtime.device, runtime.dtype)
    use_attention(causal_lm, attention)
    plan = None
    rows, checkpointing = config.micro_batch_rows, config.gradient_checkpointing
    if runtime.device.type == "cuda":
        plan = plan_micro_batch(
            ModelShape.of(causal_lm.config),
            seq_len=config.max_seq_len,
            step_rows=step_rows_per_rank(config, ranks),
            budget_bytes=_budget(config, runtime, trainable),
            lora_targets=config.lora.target_modules if config.lora.enabled else (),
            lora_dropout=config.lora.dropout if config.lora.enabled else 0.0,
            itemsize=torch.finfo(runtime.dtype).bits // 8,
            rows=rows,
            checkpointing=checkpointing,
        )
        rows, checkpointing = plan.micro_batch_rows, plan.gradient_checkpointing
        events.log("info", f"memory plan: {plan.describe()}")
    if checkpointing:
        enable_checkpointing(causal_lm)
    if config.compile:
        for layer in causal_lm.get_decoder().layers:
            layer.compile()
    speed = Speed(
        attention=attention,
        head_loss=config.head_loss,
        micro_batch_rows=rows,
        gradient_checkpointing=bool(checkpointing),
        compile=config.compile,
        padding_free=attention in (VARLEN, FLEX),
        plan=plan,
    )
    events.log(
        "info",
        f"speed: attention {attention}, {speed.head_loss} loss, micro-batch "
        f"{rows or 'as sent'}, gradient checkpointing {'on' if speed.gradient_checkpointing else 'off'}"
        f"{', compiled layers' if speed.compile else ''}",
    )
    return speed


def _budget(config: TrainConfig, runtime: Runtime, trainable: TrainableModel) -> int:
    """Bytes left for activations: the budget less the weights already on the GPU and the
    trainable parameters' gradients and optimizer state still to come."""
    device = runtime.device
    total = (
        int(config.memory_budget_gib * (1 << 30))
        if config.memory_budget_gib
        else torch.cuda.get_device_properties(device).total_memory
    )
    trainable_params = sum(p.numel() for p in trainable.parameters())
    return total - torch.cuda.memory_allocated(device) - fixed_costs(trainable_params)


def performance_fields(speed: Speed, runtime: Runtime, trainable: TrainableModel) -> dict:
    """The run summary's `performance`: what ran, the parameter counts (for MFU) and peak memory."""
    cuda = runtime.device.type == "cuda"
    if cuda:
        peak = torch.cuda.max_memory_allocated(runtime.device)
    else:
        # ru_maxrss is KiB on Linux, bytes on macOS: the process's peak resident memory.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss if sys.platform == "darwin" else rss * 1024
    return {
        "device": runtime.device.type,
        "gpu_name": runtime.gpu_name,
        "peak_memory_bytes": peak,
        "parameters": {
            "total": sum(p.numel() for p in trainable.model.parameters()),
            "trainable": sum(p.numel() for p in trainable.parameters()),
        },
        "micro_batch_rows": speed.micro_batch_rows,
        "gradient_checkpointing": speed.gradient_checkpointing,
        "attention": speed.attention,
        "loss": speed.head_loss,
        "compile": speed.compile,
        "memory_plan": speed.plan.describe() if speed.plan else None,
    }
