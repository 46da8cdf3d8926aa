"""Non-LLM baselines, learned from the training users' histories and scoring every catalog anime.

- most_popular: score(j) = how many training users watched j (the same list for everyone).
- item_knn: item-to-item cosine over co-occurrence in training histories,
  sim(i, j) = c_ij / sqrt(n_i n_j) (c_ij: users who watched both, n_i: users who watched i), and
  score(j) = sum over the user's history items i of sim(i, j). An item's similarity to itself is
  left out (it would only push the history up, and the history is excluded anyway by default).
  Computed in float64 and rounded to 9 decimals, so that sums equal in exact arithmetic tie.
- SASRec: sasrec.py.

A scorer maps a batch of histories (catalog positions) to scores over the whole catalog; ranks
and metrics come from metrics.from_scores, with the same history exclusion as the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from .data import HeldOutUser
from .metrics import Outcome, from_scores


class MostPopular:
    def __init__(self, sequences: Sequence[Sequence[int]], n_items: int, device="cpu"):
        counts = torch.zeros(n_items)
        for sequence in sequences:
            if sequence:
                counts[torch.tensor(sorted(set(sequence)))] += 1
        self.counts = counts.to(device)

    def scores(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        return self.counts.expand(len(histories), -1)


def _user_item_matrix(sequences: Sequence[Sequence[int]], n_items: int) -> torch.Tensor:
    """(users, items) 0/1, sparse COO: a user watched an item at least once."""
    rows, cols = [], []
    for user, sequence in enumerate(sequences):
        items = sorted(set(sequence))
        rows.extend([user] * len(items))
        cols.extend(items)
    index = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
    values = torch.ones(index.shape[1], dtype=torch.float64)
    return torch.sparse_coo_tensor(index, values, (len(sequences), n_items), check_invariants=True).coalesce()


class ItemKNN:
    def __init__(self, sequences: Sequence[Sequence[int]], n_items: int, device="cpu"):
        x = _user_item_matrix(sequences, n_items)
        self.n_items = n_items
        self.device = torch.device(device)
        watched = torch.sparse.sum(x, dim=0).to_dense() if x._nnz() else torch.zeros(n_items, dtype=torch.float64)
        self.inv_sqrt = torch.where(watched > 0, watched.clamp(min=1).rsqrt(), 0.0).to(self.device)
        self.seen = (watched > 0).double().to(self.device)
        # c_ij summed over a history is (h X^T) X: two sparse x dense products, never the items x items matrix.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            self.x = x.to_sparse_csr().to(self.device)
            self.xt = x.t().coalesce().to_sparse_csr().to(self.device)

    def scores(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        h = torch.zeros(len(histories), self.n_items, dtype=torch.float64, device=self.device)
        for row, items in enumerate(histories):
            if items:
                h[row, torch.tensor(items, device=self.device)] = 1.0
        weighted = h * self.inv_sqrt  # sim's 1/sqrt(n_i) of each history item
        together = self.xt @ (self.x @ weighted.t())  # (items, users): sum over i of c_ij / sqrt(n_i)
        scores = together.t() * self.inv_sqrt - h * self.seen  # sim(i, i) = 1 for a watched item
        return torch.round(scores, decimals=9)


def rank_with(
    scores: Callable[[list[list[int]]], torch.Tensor],
    users: Sequence[HeldOutUser],
    groups: torch.Tensor,
    *,
    exclude_history: bool,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Every user's outcome under a scorer, the history left out of the ranking when `exclude_history`."""
    outcomes: list[Outcome] = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        histories = [u.history for u in batch]
        scored = scores(histories)
        allowed = torch.ones(scored.shape, dtype=torch.bool, device=scored.device)
        if exclude_history:
            for row, items in enumerate(histories):
                if items:
                    allowed[row, torch.tensor(items, device=scored.device)] = False
        targets = torch.tensor([u.target for u in batch], device=scored.device)
        outcomes.extend(from_scores(scored, targets, allowed, groups))
        if progress:
            progress(len(outcomes))
    return outcomes
