"""Ranking metrics against hand-computed values; the model's strict lists and the baselines' scored
rankings (with ties) go through the same Outcome."""

import math

import pytest
import torch

from animind_trainer.recommend.data import load_catalog
from animind_trainer.recommend.metrics import (
    Outcome,
    breakdown,
    from_list,
    from_scores,
    history_bucket,
    summarize,
)
from recommend_world import write_catalog

# Five anime; their IDs share prefixes: 0 and 1 agree on 3 levels, 0 and 2 on 1 level, 3 and 4 on none with 0.
CODES = [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 1, 1, 1, 1],
    [0, 1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 0, 0, 0, 0],
    [2, 0, 0, 0, 0, 0, 0, 0],
]


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    path = write_catalog(tmp_path_factory.mktemp("catalog") / "semantic_ids.jsonl", CODES)
    return load_catalog(path).prefix_groups()


def test_a_strict_list_scores_the_targets_rank(groups):
    # Target 2 at rank 3 of the returned list.
    outcome = from_list([4, 3, 2, 1], target=2, groups=groups)
    assert (outcome.better, outcome.tied) == (2, 1)
    assert [outcome.recall(k) for k in (1, 2, 3, 5)] == [0, 0, 1, 1]
    assert outcome.ndcg(3) == pytest.approx(1 / math.log2(4))  # 0.5
    assert outcome.ndcg(2) == 0
    assert outcome.reciprocal_rank(top_k=4) == pytest.approx(1 / 3)


def test_a_target_missing_from_the_returned_list_scores_zero(groups):
    outcome = from_list([4, 3], target=2, groups=groups)
    assert (outcome.recall(20), outcome.ndcg(20), outcome.reciprocal_rank(20)) == (0, 0, 0)


def test_tied_scores_count_as_the_expected_value_over_a_random_order_of_the_tied_anime(groups):
    # Target 2 ties with 1 and 3 after anime 0: its rank is 2, 3 or 4, each with probability 1/3.
    scores = torch.tensor([[5.0, 4.0, 4.0, 4.0, 1.0]])
    allowed = torch.ones(1, 5, dtype=torch.bool)
    [outcome] = from_scores(scores, torch.tensor([2]), allowed, groups)
    assert (outcome.better, outcome.tied) == (1, 3)
    assert outcome.recall(1) == 0
    assert outcome.recall(2) == pytest.approx(1 / 3)
    assert outcome.recall(3) == pytest.approx(2 / 3)
    assert outcome.recall(5) == 1
    assert outcome.ndcg(3) == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 3)
    assert outcome.ndcg(5) == pytest.approx((1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 3)
    # MRR counts only ranks inside the returned top_k list.
    assert outcome.reciprocal_rank(top_k=3) == pytest.approx((1 / 2 + 1 / 3) / 3)
    assert outcome.reciprocal_rank(top_k=20) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_excluded_anime_neither_outrank_nor_tie_with_the_target(groups):
    scores = torch.tensor([[5.0, 4.0, 4.0, 4.0, 1.0]])
    allowed = torch.tensor([[False, True, True, False, True]])  # anime 0 and 3 are in the history
    [outcome] = from_scores(scores, torch.tensor([2]), allowed, groups)
    assert (outcome.better, outcome.tied) == (0, 2)
    assert outcome.recall(1) == pytest.approx(1 / 2)


def test_a_target_in_the_excluded_history_is_a_miss(groups):
    scores = torch.tensor([[5.0, 4.0, 4.0, 4.0, 1.0]])
    allowed = torch.tensor([[True, True, False, True, True]])
    [outcome] = from_scores(scores, torch.tensor([2]), allowed, groups)
    assert outcome.tied == 0 and outcome.recall(5) == 0 and outcome.reciprocal_rank(5) == 0


def test_per_level_accuracy_is_how_many_leading_tokens_the_top_1_shares_with_the_target(groups):
    assert from_list([1, 4], target=0, groups=groups).levels == (1, 1, 1, 0, 0, 0, 0, 0)
    assert from_list([2], target=0, groups=groups).levels == (1, 0, 0, 0, 0, 0, 0, 0)
    assert from_list([0], target=0, groups=groups).levels == (1,) * 8
    assert from_list([], target=0, groups=groups).levels == (0,) * 8
    # Anime 1 and 3 tie for first: half of the tied top-1 share each level anime 1 shares.
    scores = torch.tensor([[0.0, 9.0, 1.0, 9.0, 1.0]])
    [outcome] = from_scores(scores, torch.tensor([0]), torch.ones(1, 5, dtype=torch.bool), groups)
    assert outcome.levels == (0.5, 0.5, 0.5, 0, 0, 0, 0, 0)


def test_summaries_average_over_users_and_break_down_by_group():
    hit_first = Outcome(0, 1, (1.0,) * 8)
    hit_third = Outcome(2, 1, (0.0,) * 8)
    miss = Outcome(0, 0, (0.0,) * 8)
    summary = summarize([hit_first, hit_third, miss], k_values=[1, 5], top_k=5)
    assert summary["users"] == 3
    assert summary["recall"] == {"1": pytest.approx(1 / 3), "5": pytest.approx(2 / 3)}
    assert summary["ndcg"]["5"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert summary["mrr"] == pytest.approx((1 + 1 / 3) / 3)
    assert summary["level_accuracy"]["L8"] == pytest.approx(1 / 3)
    groups = breakdown([hit_first, hit_third, miss], ["<liked>", "<watch>", "<liked>"], [1], 5)
    assert list(groups) == ["<liked>", "<watch>"]
    assert groups["<liked>"]["users"] == 2 and groups["<liked>"]["recall"]["1"] == 0.5


def test_history_lengths_fall_into_doubling_buckets():
    assert [history_bucket(n) for n in (3, 4, 7, 8, 15, 16, 30, 31, 61, 500)] == [
        "1-3",
        "4-7",
        "4-7",
        "8-15",
        "8-15",
        "16-30",
        "16-30",
        "31-60",
        "61+",
        "61+",
    ]
