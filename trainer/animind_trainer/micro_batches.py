"""The rows of one optimizer step, regrouped into the micro-batches the GPU runs.

The feeder sends a step's rows in its own micro-batches (per_device_train_batch_size rows each).
The loss of a step is a sum over its completion tokens divided by their count, so how the rows
are grouped changes nothing but float rounding (and which LoRA dropout masks are drawn): the
worker may run them in the groups its memory plan chose (memory_plan.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .batch import IGNORE_INDEX, Batch

PAD_ID = 0  # any id in the vocabulary: padding positions carry no label and attend only to each other


def real_tokens(labels: torch.Tensor, position_ids: torch.Tensor) -> int:
    """Positions that belong to an example, not to padding: those of every packed segment with at
    least one label. The feeder drops examples without a completion, so an unlabeled segment is a
    padding run."""
    positions = position_ids.numpy().ravel()
    if positions.size == 0:
        return 0
    segments = np.cumsum(positions == 0) - 1  # rows start at position 0, so segments never span rows
    labeled = np.bincount(segments[labels.numpy().ravel() != IGNORE_INDEX], minlength=segments[-1] + 1) > 0
    return int(labeled[segments].sum())


def regroup(batches: list[Batch], rows: int, fixed_len: int | None = None) -> list[Batch]:
    """The rows of `batches` (one step's, in order) as micro-batches of `rows` rows (the last may
    have fewer), each padded to its longest row or to `fixed_len`. The last ends the step; the
    step's and the rank's completion-token counts travel unchanged."""
    last = batches[-1]
    width = fixed_len or max(b.input_ids.shape[1] for b in batches)
    inputs = torch.cat([_pad(b.input_ids, width, PAD_ID) for b in batches])
    labels = torch.cat([_pad(b.labels, width, IGNORE_INDEX) for b in batches])
    positions = torch.cat([_pad_positions(b.position_ids, width) for b in batches])
    groups = []
    for start in range(0, inputs.shape[0], rows):
        end = min(start + rows, inputs.shape[0])
        groups.append(
            replace(
                last,
                input_ids=inputs[start:end],
                labels=labels[start:end],
                position_ids=positions[start:end],
                ends_step=end == inputs.shape[0],
            )
        )
    return groups


def _pad(tensor: torch.Tensor, width: int, value: int) -> torch.Tensor:
    missing = width - tensor.shape[1]
    if missing == 0:
        return tensor
    return torch.cat([tensor, tensor.new_full((tensor.shape[0], missing), value)], dim=1)


def _pad_positions(position_ids: torch.Tensor, width: int) -> torch.Tensor:
    """A padding run of its own: positions from 0, like the feeder's padding tail."""
    missing = width - position_ids.shape[1]
    if missing == 0:
        return position_ids
    tail = torch.arange(missing, dtype=position_ids.dtype).expand(position_ids.shape[0], missing)
    return torch.cat([position_ids, tail], dim=1)
