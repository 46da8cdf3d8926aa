"""The rows of one optimizer step, regrouped into the micro-batches the GPU runs.

The feeder sends a step's rows in its own micro-batches (per_device_train_batch_size rows each).
The loss of a step is a sum over its completion tokens divided by their count, so how the rows
are grouped changes nothing but float rounding (and which LoRA dropout masks are drawn): the
worker may run them in the groups its memory plan chose (memory_plan.py).

With an attention that follows the examples rather than the rows (varlen, flex), a group can go
padding-free: its rows' examples end to end in one row, their padding left out. Packed rows are
not full (examples do not divide max_seq_len: the bundled rows fill 87% of 1,024 positions), so
padding every row to one width would spend an eighth of the step on padding.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .batch import IGNORE_INDEX, Batch

PAD_ID = 0  # any id in the vocabulary: padding positions carry no label and attend only to each other
# A padding-free row's length is rounded up to this, for the matrix units; more would waste more
# (a 2,048-token micro-batch rounded to 128 loses ~3% to padding, to 16 under 0.5%).
PADDING_FREE_MULTIPLE = 16


def _labelled_segments(labels: torch.Tensor, position_ids: torch.Tensor) -> np.ndarray:
    """Per position (flattened), whether its packed segment has a label: the feeder drops examples
    without a completion, so an unlabelled segment is a padding run."""
    positions = position_ids.numpy().ravel()
    segments = np.cumsum(positions == 0) - 1  # rows start at position 0, so segments never span rows
    labelled = np.bincount(segments[labels.numpy().ravel() != IGNORE_INDEX], minlength=segments[-1] + 1) > 0
    return labelled[segments]


def real_tokens(labels: torch.Tensor, position_ids: torch.Tensor) -> int:
    """Positions that belong to an example, not to padding."""
    if position_ids.numel() == 0:
        return 0
    return int(_labelled_segments(labels, position_ids).sum())


def regroup(batches: list[Batch], rows: int, padding_free: bool = False) -> list[Batch]:
    """The rows of `batches` (one step's, in order) as micro-batches of `rows` rows (the last may
    have fewer), each padded to its longest row, or, `padding_free`, as one row holding their
    examples end to end. The last ends the step; the step's and the rank's completion-token counts
    travel unchanged."""
    width = max(b.input_ids.shape[1] for b in batches)
    inputs = torch.cat([_pad(b.input_ids, width, PAD_ID) for b in batches])
    labels = torch.cat([_pad(b.labels, width, IGNORE_INDEX) for b in batches])
    positions = torch.cat([_pad_positions(b.position_ids, width) for b in batches])
    groups = []
    for start in range(0, inputs.shape[0], rows):
        end = min(start + rows, inputs.shape[0])
        group = inputs[start:end], labels[start:end], positions[start:end]
        if padding_free:
            group = _end_to_end(*group)
        groups.append(
            replace(
                batches[-1],
                input_ids=group[0],
                labels=group[1],
                position_ids=group[2],
                ends_step=end == inputs.shape[0],
            )
        )
    return groups


def _end_to_end(inputs: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor):
    """One row of the examples of these rows, padding dropped, then a padding run up to a multiple
    of PADDING_FREE_MULTIPLE."""
    keep = torch.from_numpy(_labelled_segments(labels, positions))
    inputs, labels, positions = (t.reshape(-1)[keep] for t in (inputs, labels, positions))
    width = -(-max(len(inputs), 1) // PADDING_FREE_MULTIPLE) * PADDING_FREE_MULTIPLE
    return (
        _pad(inputs.unsqueeze(0), width, PAD_ID),
        _pad(labels.unsqueeze(0), width, IGNORE_INDEX),
        _pad_positions(positions.unsqueeze(0), width),
    )


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
