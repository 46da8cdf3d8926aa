"""Learning-rate factor per optimizer step: linear warmup, then linear or cosine decay."""

from __future__ import annotations

import math


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def lr_factor(step: int, total_steps: int, warmup_ratio: float, schedule: str) -> float:
    """Factor for 1-based optimizer `step` of `total_steps`.

    Warmup reaches the peak on its last step; decay starts at the peak and ends one
    step short of zero, so neither the first nor the last step is wasted at lr 0.
    Steps past the total get 0.
    """
    warmup = warmup_steps(total_steps, warmup_ratio)
    if step <= warmup:
        return step / warmup
    decay_steps = total_steps - warmup
    progress = (step - warmup - 1) / decay_steps if decay_steps else 1.0
    if progress >= 1:
        return 0.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - progress
