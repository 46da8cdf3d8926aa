"""Ranking metrics, one code path for the model and every baseline.

Each held-out user has one target. A model's ranking of a user is reduced to an Outcome: how many
anime it ranks strictly above the target (`better`), how many share the target's place (`tied`,
the target included; 0 when the target is not in the ranking at all), and how far its top-1
matches the target's semantic ID. Returned lists are cut at top_k.

- Recall@K (hit rate; one target): the target is among the first K.
- NDCG@K: 1 / log2(rank + 1) when the target's rank is at most K, else 0 (the ideal DCG is 1).
- MRR: 1 / rank when the target is in the returned top_k list, else 0.
- Per-level accuracy L1..L8: the top-1 anime's first L tokens equal the target's.

Ties. A scored ranking (the baselines: popularity counts tie often) puts the target at any of the
ranks better+1 .. better+tied with equal probability, as a random order of the tied anime would;
every metric is its expected value over that order. E.g. the target tied with 3 others right after
8 better anime: Recall@10 = 2/4 (ranks 9 and 10 of 9..12 hit). The model's beam list is a strict
order (tied scores are broken by token path) and so always has tied = 1. Per-level accuracy with
several anime tied for first is the share of them that match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .data import LEVELS

# History-length buckets (inclusive bounds; None: no upper bound) of the breakdown.
HISTORY_BUCKETS = ((1, 3), (4, 7), (8, 15), (16, 30), (31, 60), (61, None))


@dataclass(frozen=True)
class Outcome:
    better: int  # anime ranked strictly above the target
    tied: int  # anime sharing the target's place, the target included; 0: the target is not ranked
    levels: tuple[float, ...]  # per level L = 1..8: the top-1's first L tokens are the target's (expected)

    def recall(self, k: int) -> float:
        return min(max(k - self.better, 0), self.tied) / self.tied if self.tied else 0.0

    def ndcg(self, k: int) -> float:
        return _mean_over_ranks(self, k, lambda r: 1.0 / math.log2(r + 1))

    def reciprocal_rank(self, top_k: int) -> float:
        return _mean_over_ranks(self, top_k, lambda r: 1.0 / r)


def _mean_over_ranks(outcome: Outcome, cut: int, gain: Callable[[int], float]) -> float:
    """The gain averaged over the target's equally likely ranks, 0 past `cut`."""
    if not outcome.tied:
        return 0.0
    last = min(outcome.better + outcome.tied, cut)
    return sum(gain(r) for r in range(outcome.better + 1, last + 1)) / outcome.tied


def _prefix_match(top: int, target: int, groups: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in (groups[top] == groups[target]).tolist())


def from_list(ranked: Sequence[int], target: int, groups: torch.Tensor) -> Outcome:
    """A strict ranking (best first, already cut at top_k). `groups`: Catalog.prefix_groups()."""
    levels = _prefix_match(ranked[0], target, groups) if ranked else (0.0,) * LEVELS
    if target in ranked:
        return Outcome(list(ranked).index(target), 1, levels)
    return Outcome(0, 0, levels)


def from_scores(scores: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor, groups: torch.Tensor):
    """Outcomes of a batch of scored rankings: `scores` (users, anime), higher is better;
    `allowed` (users, anime) False where an anime is left out (the user's history)."""
    scores = scores if scores.is_floating_point() else scores.double()
    rows = torch.arange(len(scores), device=scores.device)
    target_score = scores[rows, targets][:, None]
    better = torch.count_nonzero((scores > target_score) & allowed, dim=1)
    tied = torch.count_nonzero((scores == target_score) & allowed, dim=1) * allowed[rows, targets]
    best = scores.masked_fill(~allowed, -math.inf).amax(1, keepdim=True)
    # The anime tied for first (usually one per user), each compared with its user's target.
    user, top = torch.nonzero((scores == best) & allowed, as_tuple=True)
    groups = groups.to(scores.device)
    match = (groups[top] == groups[targets[user]]).double()
    shares = torch.zeros(len(scores), LEVELS, dtype=torch.float64, device=scores.device).index_add_(0, user, match)
    shares /= torch.bincount(user, minlength=len(scores)).clamp(min=1)[:, None]
    levels = shares.tolist()
    return [Outcome(int(b), int(t), tuple(lv)) for b, t, lv in zip(better.tolist(), tied.tolist(), levels, strict=True)]


def summarize(outcomes: Sequence[Outcome], k_values: Sequence[int], top_k: int) -> dict:
    n = len(outcomes)
    mean = lambda values: sum(values) / n if n else None  # noqa: E731
    return {
        "users": n,
        "recall": {str(k): mean([o.recall(k) for o in outcomes]) for k in k_values},
        "ndcg": {str(k): mean([o.ndcg(k) for o in outcomes]) for k in k_values},
        "mrr": mean([o.reciprocal_rank(top_k) for o in outcomes]),
        "level_accuracy": {f"L{level + 1}": mean([o.levels[level] for o in outcomes]) for level in range(LEVELS)},
    }


def history_bucket(length: int) -> str:
    for low, high in HISTORY_BUCKETS:
        if length >= low and (high is None or length <= high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return f"<{HISTORY_BUCKETS[0][0]}"


def breakdown(outcomes: Sequence[Outcome], keys: Sequence[str], k_values, top_k, order=None) -> dict:
    """The summary of each group of users (`keys[i]`: user i's group), in `order` or first-seen order."""
    groups: dict[str, list[Outcome]] = {}
    for key, outcome in zip(keys, outcomes, strict=True):
        groups.setdefault(key, []).append(outcome)
    names = [k for k in order if k in groups] if order else list(groups)
    return {name: summarize(groups[name], k_values, top_k) for name in names}


def bucket_order() -> list[str]:
    return [history_bucket(low) for low, _ in HISTORY_BUCKETS]
