"""Test-side frame writer and packer: what the TypeScript supervisor does, in Python."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

HELLO, PHASE, BATCH, EVAL, END = 1, 2, 3, 4, 5
IGNORE = -100

SPECIAL_TOKENS = ["<anime_start>", "<anime_end>", "<watch>", "<liked>", "<disliked>", "<dropped>"]
# Same order as semantic_vocab.json's `tokens`: the specials, then level by level.
ADDED_TOKENS = SPECIAL_TOKENS + [f"<L{level}_{code}>" for level in range(1, 9) for code in range(2048)]


def frame(frame_type: int, payload: bytes = b"") -> bytes:
    return struct.pack("<BI", frame_type, len(payload)) + payload


def hello(config: dict, added_tokens=ADDED_TOKENS, protocol_version: int = 1) -> bytes:
    body = {"protocol_version": protocol_version, "config": config, "added_tokens": added_tokens}
    return frame(HELLO, json.dumps(body).encode("utf-8"))


def phase(name: str, total_steps: int, epochs: int = 1, **extra) -> bytes:
    body = {"name": name, "total_steps": total_steps, "epochs": epochs, **extra}
    return frame(PHASE, json.dumps(body).encode())


def end() -> bytes:
    return frame(END)


@dataclass
class Rows:
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray

    @property
    def completion_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())


FLAG_ENDS_STEP, FLAG_ENGLISH, FLAG_PADDING = 1, 2, 4


def _rows_frame(frame_type: int, rows: Rows, flags: int, step_completion_tokens: int, rank_tokens: int = 0) -> bytes:
    n, seq_len = rows.input_ids.shape
    header = struct.pack("<5I", n, seq_len, flags, step_completion_tokens, rank_tokens)
    arrays = np.stack([rows.input_ids, rows.labels, rows.position_ids]).astype("<i4")
    return frame(frame_type, header + arrays.tobytes())


def batch(rows: Rows, ends_step: bool, step_completion_tokens: int, rank_tokens: int | None = None) -> bytes:
    """`rank_tokens`: this rank's completion tokens in the step; a single worker's are the step's."""
    rank = step_completion_tokens if rank_tokens is None else rank_tokens
    return _rows_frame(BATCH, rows, int(ends_step), step_completion_tokens, rank)


def padding_batch(seq_len: int, step_completion_tokens: int) -> bytes:
    """A rank's only micro-batch of a step that left it none: no rows, padding and step-end flags."""
    header = struct.pack("<5I", 0, seq_len, FLAG_PADDING | FLAG_ENDS_STEP, step_completion_tokens, 0)
    return frame(BATCH, header)


def eval_batch(rows: Rows, english: bool = False) -> bytes:
    return _rows_frame(EVAL, rows, FLAG_ENGLISH if english else 0, 0)


def example_row(prompt: list[int], completion: list[int]) -> tuple[list[int], list[int]]:
    """Input ids and labels of one example: loss on the completion only."""
    return prompt + completion, [IGNORE] * len(prompt) + completion


def pack(examples: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int) -> Rows:
    """Greedy first-fit packing; each row's padding tail is its own run of positions."""
    rows: list[list[tuple[list[int], list[int]]]] = []
    for example in examples:
        length = len(example[0])
        assert length <= seq_len, "example longer than seq_len"
        target = next((r for r in rows if sum(len(e[0]) for e in r) + length <= seq_len), None)
        if target is None:
            rows.append(target := [])
        target.append(example)
    ids, labels, positions = [], [], []
    for row in rows:
        row_ids = [t for e in row for t in e[0]]
        row_labels = [t for e in row for t in e[1]]
        row_pos = [p for e in row for p in range(len(e[0]))]
        pad = seq_len - len(row_ids)
        ids.append(row_ids + [pad_id] * pad)
        labels.append(row_labels + [IGNORE] * pad)
        positions.append(row_pos + list(range(pad)))
    return Rows(np.array(ids), np.array(labels), np.array(positions))


def optimizer_step(micro_batches: list[Rows]) -> list[bytes]:
    """BATCH frames for one optimizer step: the last one carries the step-end flag."""
    total = sum(r.completion_tokens for r in micro_batches)
    return [batch(r, i == len(micro_batches) - 1, total) for i, r in enumerate(micro_batches)]


def deal(micro_batches: list[Rows], world: int) -> list[list[bytes]]:
    """One optimizer step's BATCH frames for each rank, as sinks/trainer/ranks.ts's StepRouter deals
    them: micro-batch m to rank m mod world, each rank's last one with the step-end flag and every one
    with the rank's share of the step's completion tokens; a rank left with none gets a padding one."""
    total = sum(r.completion_tokens for r in micro_batches)
    out = []
    for rank in range(world):
        mine = micro_batches[rank::world]
        if not mine:
            out.append([padding_batch(micro_batches[0].input_ids.shape[1], total)])
            continue
        tokens = sum(r.completion_tokens for r in mine)
        out.append([batch(r, k == len(mine) - 1, total, tokens) for k, r in enumerate(mine)])
    return out
