"""Summed cross-entropy over completion tokens of one packed micro-batch."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .batch import IGNORE_INDEX, Batch
from .packing import block_causal_mask
from .runtime import Runtime


def _autocast(runtime: Runtime):
    if not runtime.autocast:
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.dtype)


def completion_loss_sum(causal_lm: nn.Module, batch: Batch, runtime: Runtime) -> tuple[torch.Tensor, int]:
    """Sum (not mean) of token losses, and how many tokens it covers.

    The caller divides by the whole optimizer step's completion-token count, so every
    completion token weighs the same however the examples fell into micro-batches.
    Logits are computed only where a label exists: with ~168k vocabulary entries the
    full logits tensor would dominate memory while most positions are masked prompt.
    """
    device = runtime.device
    input_ids = batch.input_ids.to(device, non_blocking=True)
    labels = batch.labels.to(device, non_blocking=True)
    position_ids = batch.position_ids.to(device, non_blocking=True)
    attention = causal_lm.config._attn_implementation
    mask = block_causal_mask(position_ids, attention, runtime.dtype)
    with _autocast(runtime):
        hidden = causal_lm.get_decoder()(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state
        # Hidden state at t predicts the label at t + 1 (labels are aligned with input_ids).
        targets = labels[:, 1:]
        scored = targets != IGNORE_INDEX
        logits = causal_lm.get_output_embeddings()(hidden[:, :-1][scored])
    loss_sum = F.cross_entropy(logits.float(), targets[scored], reduction="sum")
    return loss_sum, int(scored.sum())
