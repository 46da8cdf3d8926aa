"""Decode and validate the binary payload of BATCH and EVAL frames."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from .errors import WorkerError

BATCH_HEADER = struct.Struct("<5I")
FLAG_ENDS_STEP = 1
FLAG_ENGLISH = 2  # EVAL only: the rows are the English-retention texts, not held-out training rows
FLAG_PADDING = 4  # BATCH only: no rows; keeps a rank with nothing left in a short step in the all-reduce
# EVAL tolerates the step-end bit (it has no meaning there) so a supervisor can reuse one encoder.
ALLOWED_FLAGS = {"BATCH": FLAG_ENDS_STEP | FLAG_PADDING, "EVAL": FLAG_ENDS_STEP | FLAG_ENGLISH}
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (rows, seq_len) int64
    labels: torch.Tensor  # (rows, seq_len) int64, IGNORE_INDEX where no loss
    position_ids: torch.Tensor  # (rows, seq_len) int64, 0 at each packed example start
    ends_step: bool
    step_completion_tokens: int  # the whole optimizer step's, over every rank: the loss normaliser
    english: bool = False
    # This rank's completion tokens in its micro-batches of the step (BATCH header field 5); a single
    # worker's equal step_completion_tokens. None: not given (EVAL, or a Batch built in code).
    rank_completion_tokens: int | None = None
    padding: bool = False  # no rows (input_ids is rows=0): see FLAG_PADDING

    @property
    def completion_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    @property
    def tokens(self) -> int:
        return self.input_ids.numel()


def decode_batch(payload: bytes, kind: str, vocab_size: int) -> Batch:
    """Parse a BATCH/EVAL payload; any inconsistency is a supervisor bug, so fail loudly."""
    if len(payload) < BATCH_HEADER.size:
        raise WorkerError(f"{kind} payload is {len(payload)} bytes, shorter than its {BATCH_HEADER.size}-byte header")
    rows, seq_len, flags, step_tokens, rank_tokens = BATCH_HEADER.unpack_from(payload)
    if flags & ~ALLOWED_FLAGS[kind]:
        raise WorkerError(f"{kind} has unknown flag bits set: {flags:#x}")
    padding = bool(flags & FLAG_PADDING)
    if padding:
        if rows != 0 or not flags & FLAG_ENDS_STEP or rank_tokens != 0:
            raise WorkerError(
                f"padding {kind} must have rows=0, the step-end flag and rank_completion_tokens 0, "
                f"got rows={rows}, flags={flags:#x}, rank_completion_tokens={rank_tokens}"
            )
        if len(payload) != BATCH_HEADER.size:
            raise WorkerError(
                f"padding {kind} payload is {len(payload)} bytes, not its {BATCH_HEADER.size}-byte header"
            )
        empty = torch.zeros((0, seq_len), dtype=torch.long)
        return Batch(empty, empty, empty, True, step_tokens, rank_completion_tokens=0, padding=True)
    if rows == 0 or seq_len == 0:
        raise WorkerError(f"{kind} has an empty shape: rows={rows}, seq_len={seq_len}")
    expected = BATCH_HEADER.size + 3 * rows * seq_len * 4
    if len(payload) != expected:
        raise WorkerError(f"{kind} payload is {len(payload)} bytes but rows={rows}, seq_len={seq_len} needs {expected}")
    arrays = np.frombuffer(payload, dtype="<i4", offset=BATCH_HEADER.size).reshape(3, rows, seq_len)
    input_ids, labels, position_ids = (torch.from_numpy(a.astype(np.int64)) for a in arrays)
    _validate(kind, input_ids, labels, position_ids, vocab_size)
    return Batch(
        input_ids,
        labels,
        position_ids,
        bool(flags & FLAG_ENDS_STEP),
        step_tokens,
        bool(flags & FLAG_ENGLISH),
        rank_completion_tokens=rank_tokens if kind == "BATCH" else None,
    )


def _validate(kind, input_ids, labels, position_ids, vocab_size) -> None:
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size:
        raise WorkerError(f"{kind} input_ids outside the vocabulary [0, {vocab_size})")
    scored = labels != IGNORE_INDEX
    if scored.any() and (int(labels[scored].min()) < 0 or int(labels[scored].max()) >= vocab_size):
        raise WorkerError(f"{kind} labels outside the vocabulary [0, {vocab_size}) and not {IGNORE_INDEX}")
    if (position_ids[:, 0] != 0).any():
        raise WorkerError(f"{kind} position_ids must start at 0 in every row")
    steps = position_ids[:, 1:] - position_ids[:, :-1]
    if ((steps != 1) & (position_ids[:, 1:] != 0)).any():
        raise WorkerError(f"{kind} position_ids must count up by 1 and restart only at 0")
    # The token at an example's first position has no context in that example, so
    # a label there could only be learned across the packing boundary.
    if (scored & (position_ids == 0)).any():
        raise WorkerError(f"{kind} has a label at an example's first position (position_ids 0)")
