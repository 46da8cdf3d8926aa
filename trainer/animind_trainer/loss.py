"""Summed cross-entropy over completion tokens of one packed micro-batch.

Everything the GPU needs to know about the micro-batch's layout (which positions are scored, where
the packed examples start) is computed here on the CPU, from the frame's CPU tensors, and copied
over: nothing inside a micro-batch waits for the GPU (no `.item()`, no boolean indexing of a GPU
tensor), so the CPU reads the next frame while the GPU still computes.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .batch import IGNORE_INDEX, Batch
from .chunked_loss import chunked_head_cross_entropy
from .new_rows import NewRowsHead
from .packed_attention import packed_decoder_kwargs
from .runtime import Runtime


def _autocast(runtime: Runtime):
    if not runtime.autocast:
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.dtype)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    # Pinned host memory makes the copy truly asynchronous on CUDA.
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def scored_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (over rows x seq_len) of the hidden states that predict a label, and those labels.

    Labels are aligned with input_ids: the hidden state at t predicts the label at t + 1."""
    rows, seq_len = labels.shape
    predicts = torch.zeros((rows, seq_len), dtype=torch.bool)
    predicts[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    index = predicts.flatten().nonzero().squeeze(1)
    return index, labels.flatten()[index + 1]


def completion_loss_sum(
    causal_lm: nn.Module, batch: Batch, runtime: Runtime, head_loss: str = "chunked"
) -> tuple[torch.Tensor, int]:
    """Sum (not mean) of token losses, and how many tokens it covers.

    The caller divides by the whole optimizer step's completion-token count, so every
    completion token weighs the same however the examples fell into micro-batches.
    Logits exist only where a label is: with ~168k vocabulary entries the full logits
    tensor would dominate memory while most positions are masked prompt. `chunked` (the
    default) goes further and never holds more than one chunk of them (chunked_loss.py);
    `plain` is the reference it is tested against.
    """
    device = runtime.device
    index, targets = scored_positions(batch.labels)
    attention = causal_lm.config._attn_implementation
    layout = packed_decoder_kwargs(attention, batch.position_ids, device, runtime.dtype)
    input_ids = _to_device(batch.input_ids, device)
    position_ids = _to_device(batch.position_ids, device)
    index, targets = _to_device(index, device), _to_device(targets, device)
    head = causal_lm.get_output_embeddings()
    with _autocast(runtime):
        hidden = causal_lm.get_decoder()(
            input_ids=input_ids, position_ids=position_ids, use_cache=False, **layout
        ).last_hidden_state
        scored = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
        if head_loss == "chunked" and isinstance(head, NewRowsHead):
            return chunked_head_cross_entropy(scored, head, targets), len(index)
        logits = head(scored)
    return F.cross_entropy(logits.float(), targets, reduction="sum"), len(index)
