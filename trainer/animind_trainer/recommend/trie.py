"""A trie over every valid semantic ID, as tensors, for decoding constrained to valid IDs.

The IDs (8 token ids each) are sorted; then the anime under any prefix are one contiguous run of
rows, so a node is a row range [start, end) and its count is end - start. Node j of depth d is
the j-th distinct d-token prefix in sorted order; its children are a contiguous run of depth d+1
nodes. Excluding anime (a user's history) is a per-user 0/1 row mask: a node's remaining count is
a difference of that mask's prefix sums, and a node with none remaining is not a choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import WorkerError
from .data import LEVELS, Catalog


@dataclass(frozen=True)
class Exclusions:
    """Per user: how many non-excluded anime lie before each sorted row (prefix sums, one extra column)."""

    kept_before: torch.Tensor  # (users, anime + 1)

    def remaining(self, users: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        return self.kept_before[users, ends] - self.kept_before[users, starts]


class SemanticIdTrie:
    def __init__(self, token_ids: torch.Tensor, device: torch.device | str = "cpu"):
        """`token_ids`: (anime, 8), each row one anime's ID as token ids, in catalog order."""
        token_ids = token_ids.to(torch.long).cpu()
        if token_ids.ndim != 2 or token_ids.shape[1] != LEVELS or len(token_ids) == 0:
            raise ValueError(f"expected (anime, {LEVELS}) token ids, got {tuple(token_ids.shape)}")
        n = len(token_ids)
        order = torch.arange(n)
        for level in reversed(range(LEVELS)):  # stable sorts, last key first: lexicographic order
            order = order[torch.sort(token_ids[order, level], stable=True).indices]
        rows = token_ids[order]
        self.device = torch.device(device)
        self.size = n
        self.rows = rows.to(self.device)
        self.anime_of_row = order.to(self.device)
        self.row_of_anime = torch.empty_like(order)
        self.row_of_anime[order] = torch.arange(n)
        self.row_of_anime = self.row_of_anime.to(self.device)
        # Per depth d = 0..8: node ranges, each row's node, each node's last token.
        self.starts, self.ends, self.node_of_row, self.tokens = [], [], [], []
        new = torch.zeros(n, dtype=torch.bool)
        new[0] = True
        for depth in range(LEVELS + 1):
            if depth:
                new[1:] |= rows[1:, depth - 1] != rows[:-1, depth - 1]
            starts = torch.nonzero(new).flatten()
            ends = torch.cat([starts[1:], torch.tensor([n])])
            self.starts.append(starts.to(self.device))
            self.ends.append(ends.to(self.device))
            self.node_of_row.append((torch.cumsum(new.long(), 0) - 1).to(self.device))
            last = rows[starts, depth - 1] if depth else torch.zeros(1, dtype=torch.long)
            self.tokens.append(last.to(self.device))
        # Children of depth-d node p: depth-(d+1) nodes [first_child[d][p], end_child[d][p]).
        self.first_child = [self.node_of_row[d + 1][self.starts[d]] for d in range(LEVELS)]
        self.end_child = [self.node_of_row[d + 1][self.ends[d] - 1] + 1 for d in range(LEVELS)]
        self._ids = {tuple(r) for r in token_ids.tolist()}

    @classmethod
    def of(cls, catalog: Catalog, tokenizer, device="cpu") -> SemanticIdTrie:
        return cls(catalog_token_ids(catalog, tokenizer), device)

    def nodes(self, depth: int) -> int:
        return len(self.starts[depth])

    def exclusions(self, excluded: list[list[int]]) -> Exclusions:
        """`excluded[u]`: the catalog positions user u may not be offered."""
        kept = torch.ones(len(excluded), self.size + 1, dtype=torch.int32, device=self.device)
        kept[:, 0] = 0
        for user, items in enumerate(excluded):
            if items:
                index = torch.as_tensor(items, dtype=torch.long, device=self.device)
                kept[user, self.row_of_anime[index] + 1] = 0
        return Exclusions(torch.cumsum(kept, dim=1, dtype=torch.int32))

    def children(
        self, depth: int, parents: torch.Tensor, users: torch.Tensor, exclusions: Exclusions
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every choice after depth-`depth` nodes `parents` (one per beam, of user `users[b]`):
        (beam index, child node at depth + 1, its token id), children with nothing left not included."""
        first, end = self.first_child[depth][parents], self.end_child[depth][parents]
        counts = end - first
        beam = torch.repeat_interleave(torch.arange(len(parents), device=self.device), counts)
        offsets = torch.arange(len(beam), device=self.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        child = first[beam] + offsets
        left = exclusions.remaining(users[beam], self.starts[depth + 1][child], self.ends[depth + 1][child])
        keep = left > 0
        return beam[keep], child[keep], self.tokens[depth + 1][child[keep]]

    def anime_of_leaf(self, leaf: int, exclusions: Exclusions, user: int) -> list[int]:
        """The catalog positions with the full ID `leaf` that user `user` may be offered (one,
        unless several anime share a semantic ID)."""
        return self.anime_of_leaves([leaf], exclusions, [user])[0]

    def anime_of_leaves(self, leaves: list[int], exclusions: Exclusions, users: list[int]) -> list[list[int]]:
        """anime_of_leaf for many leaves, read on the CPU in one transfer."""
        if not leaves:
            return []
        index = torch.tensor(leaves, device=self.device)
        starts, ends = self.starts[LEVELS][index].tolist(), self.ends[LEVELS][index].tolist()
        kept = exclusions.kept_before[torch.tensor(users, device=self.device)].cpu()
        anime = self.anime_of_row.cpu()
        out = []
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            rows = [r for r in range(start, end) if kept[i, r + 1] > kept[i, r]]
            out.append(sorted(int(anime[r]) for r in rows))
        return out

    def path(self, leaf: int) -> list[int]:
        return self.rows[int(self.starts[LEVELS][leaf])].tolist()

    def is_valid(self, token_ids: list[int]) -> bool:
        """Whether these 8 token ids are some anime's semantic ID (history exclusions aside)."""
        return tuple(token_ids) in self._ids


def catalog_token_ids(catalog: Catalog, tokenizer) -> torch.Tensor:
    """(anime, 8) token ids of every ID; each level token must be one id of the run's tokenizer."""
    distinct = sorted({t for tokens in catalog.tokens for t in tokens})
    ids = tokenizer.convert_tokens_to_ids(distinct)
    encoded = tokenizer(distinct, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    id_of = {}
    for token, token_id, enc in zip(distinct, ids, encoded, strict=True):
        if token_id is None or token_id == unk or enc != [token_id]:
            line = next(i for i, tokens in enumerate(catalog.tokens) if token in tokens)
            raise WorkerError(
                f"{catalog.path}: anime {catalog.anime_ids[line]}'s token {token} is not a single token of the "
                "run's tokenizer: the semantic IDs do not belong to this run"
            )
        id_of[token] = token_id
    return torch.tensor([[id_of[t] for t in tokens] for tokens in catalog.tokens], dtype=torch.long)
