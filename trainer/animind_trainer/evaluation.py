"""Token-weighted eval loss over a run of consecutive EVAL frames, kept per eval set."""

from __future__ import annotations

import math
from dataclasses import dataclass

HELDOUT, ENGLISH = "heldout", "english"


@dataclass
class _Totals:
    loss_sum: float = 0.0
    tokens: int = 0


class EvalRun:
    def __init__(self):
        self._totals: dict[str, _Totals] = {}

    def add(self, eval_set: str, loss_sum: float, tokens: int) -> None:
        totals = self._totals.setdefault(eval_set, _Totals())
        totals.loss_sum += loss_sum
        totals.tokens += tokens

    def take(self) -> list[tuple[str, float | None, int]]:
        """(set, mean loss per token or None when no token was scored, tokens); then empty."""
        results = [
            (name, t.loss_sum / t.tokens if t.tokens else None, t.tokens) for name, t in sorted(self._totals.items())
        ]
        self._totals.clear()
        return results


def eval_record(step: int, eval_set: str, loss: float, tokens: int) -> dict:
    # exp overflows a float past ~709; an absurd loss reports no perplexity instead.
    return {
        "set": eval_set,
        "step": step,
        "eval_loss": loss,
        "tokens": tokens,
        "perplexity": math.exp(loss) if loss < 700 else None,
    }
