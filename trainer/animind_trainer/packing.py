"""Attention for packed rows: causal inside each example, nothing across examples.

Each row holds several examples back to back, and position_ids restart at 0 where
an example starts. transformers returns a 4D mask unchanged, so passing one here
makes the block-diagonal structure explicit instead of relying on its own packed
sequence detection, which is skipped whenever a cache or 2D mask is in play.
"""

from __future__ import annotations

import torch


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Index of the packed example each token belongs to, per row."""
    return (position_ids == 0).cumsum(dim=-1)


def block_causal_mask(position_ids: torch.Tensor, attention: str, dtype: torch.dtype) -> torch.Tensor:
    """(rows, 1, seq, seq) mask: boolean for sdpa, additive for eager attention."""
    segments = segment_ids(position_ids)
    seq_len = position_ids.shape[-1]
    same_example = segments.unsqueeze(-1) == segments.unsqueeze(-2)
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool, device=position_ids.device).tril()
    allowed = (same_example & causal).unsqueeze(1)
    if attention == "sdpa":
        return allowed
    if attention == "eager":
        blocked = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
        return blocked.masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(f"packed training supports sdpa or eager attention, not {attention}")
