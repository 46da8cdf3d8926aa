"""Decoding 8 level tokens: beam search constrained to valid semantic IDs, and plain greedy decoding.

Both share one forward pass over the prompts (left-padded, KV cache), then run 8 steps together:
the cache rows are the live beams of every user followed by one greedy row per user.

Scores. A beam's score is the model's own log-probability of its tokens: log-softmax over the
full vocabulary, then every token outside the trie's allowed children is ruled out. Renormalising
over the allowed tokens instead would credit a prefix with the probability mass the model put on
invalid continuations, and change the ranking between prefixes; with the full-vocabulary scores a
finished beam's score is log P(ID | prompt), comparable across anime.

Determinism. No sampling. Candidates are ordered by score, ties by token path (the lower token id
first; node numbers follow the sorted token ids, so comparing nodes compares paths); greedy takes
the lowest token id among equal maxima (torch.argmax returns the first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import LEVELS
from .trie import Exclusions, SemanticIdTrie


@dataclass(frozen=True)
class Decoded:
    rankings: list[list[tuple[int, float]]]  # per user: (catalog position, log-probability), best first
    greedy: list[list[int]] | None  # per user: the 8 unconstrained greedy token ids


def _forward(model, input_ids, attention_mask, position_ids, cache=None):
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,  # the prompt's other positions' logits would be rows x vocabulary x length
    )
    return out.logits[:, -1].float(), out.cache


def _best_per_user(users, scores, nodes, width: int) -> torch.Tensor:
    """Indices of the `width` best candidates of each user, grouped by user, best first: score
    descending, ties to the lower node (the lower token path)."""
    order = torch.argsort(nodes, stable=True)
    order = order[torch.argsort(-scores[order], stable=True)]
    order = order[torch.argsort(users[order], stable=True)]
    grouped = users[order]
    rank = torch.arange(len(order), device=order.device) - torch.searchsorted(grouped, grouped)
    return order[rank < width]


@torch.no_grad()
def decode(
    model,
    prompts: list[list[int]],
    trie: SemanticIdTrie,
    exclusions: Exclusions,
    *,
    beam_size: int,
    top_k: int,
    pad_id: int,
    greedy: bool = False,
) -> Decoded:
    """Rank up to `top_k` anime for each prompt (its token ids) by beam search over the trie, user u
    never offered what `exclusions` row u excludes; with `greedy`, also decode 8 tokens freely."""
    device = trie.device
    users = len(prompts)
    width = max(len(p) for p in prompts)
    ids = torch.full((users, width), pad_id, dtype=torch.long)
    mask = torch.zeros((users, width), dtype=torch.long)
    for u, prompt in enumerate(prompts):
        ids[u, width - len(prompt) :] = torch.tensor(prompt)
        mask[u, width - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    logits, cache = _forward(model, ids, mask, positions)
    next_position = positions[:, -1] + 1

    everyone = torch.arange(users, device=device)
    beam_user, beam_node = everyone, torch.zeros(users, dtype=torch.long, device=device)
    beam_score = torch.zeros(users, device=device)
    beam_rows, greedy_rows = everyone, everyone  # the rows of `logits` (and of the cache) they continue
    greedy_tokens = []
    for depth in range(LEVELS):
        logprobs = torch.log_softmax(logits[beam_rows], dim=-1)
        parent, child, token = trie.children(depth, beam_node, beam_user, exclusions)
        score = beam_score[parent] + logprobs[parent, token]
        chosen = _best_per_user(beam_user[parent], score, child, beam_size)
        parent, child, token, score = parent[chosen], child[chosen], token[chosen], score[chosen]
        if greedy:
            greedy_tokens.append(logits[greedy_rows].argmax(dim=-1))
        beam_user, beam_node, beam_score = beam_user[parent], child, score
        if depth == LEVELS - 1:
            break
        rows = torch.cat([beam_rows[parent], greedy_rows]) if greedy else beam_rows[parent]
        if not len(rows):  # every user's choices are excluded
            break
        row_user = torch.cat([beam_user, everyone]) if greedy else beam_user
        tokens = torch.cat([token, greedy_tokens[-1]]) if greedy else token
        cache.reorder_cache(rows)
        row_mask = torch.cat([mask[row_user], torch.ones(len(rows), depth + 1, dtype=torch.long, device=device)], 1)
        logits, cache = _forward(
            model, tokens[:, None], row_mask, (next_position[row_user] + depth)[:, None], cache=cache
        )
        beam_rows = torch.arange(len(beam_user), device=device)
        greedy_rows = len(beam_user) + everyone

    rankings: list[list[tuple[int, float]]] = [[] for _ in range(users)]
    owners = beam_user.tolist()
    found = trie.anime_of_leaves(beam_node.tolist(), exclusions, owners)
    for user, anime_list, score in zip(owners, found, beam_score.tolist(), strict=True):
        for anime in anime_list:
            if len(rankings[user]) < top_k:
                rankings[user].append((anime, score))
    free = torch.stack(greedy_tokens, dim=1).tolist() if greedy else None
    return Decoded(rankings, free)
