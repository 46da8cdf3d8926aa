"""Most-popular and item-kNN on a hand-made dataset, ranked by the same code as the model."""

import math

import pytest
import torch

from animind_trainer.recommend.baselines import ItemKNN, MostPopular, rank_with
from animind_trainer.recommend.data import HeldOutUser

# Training users' histories over anime 0..4 (catalog positions). Anime 4 nobody watched;
# the second watch of 1 by the last user counts once.
TRAIN = [[0, 1], [0, 1, 2], [1, 2], [3], [1, 1]]
N = 5
# Users who watched: 0 -> 2, 1 -> 4, 2 -> 2, 3 -> 1, 4 -> 0. Both 0 and 1: 2 users; 0 and 2: 1; 1 and 2: 2.
SIM_01 = 2 / math.sqrt(2 * 4)
SIM_02 = 1 / math.sqrt(2 * 2)
SIM_12 = 2 / math.sqrt(4 * 2)

GROUPS = torch.arange(N)[:, None].expand(N, 8)  # no two anime share a prefix


def user(history, target):
    return HeldOutUser(user_id=0, history=history, target=target, prompt="-", sentiment="<liked>", history_length=1)


def test_most_popular_scores_each_anime_by_the_users_who_watched_it():
    scores = MostPopular(TRAIN, N).scores([[0], [3, 4]])
    assert scores.tolist() == [[2, 4, 2, 1, 0]] * 2


def test_item_knn_sums_the_cosine_similarities_to_the_history():
    knn = ItemKNN(TRAIN, N)
    one, two, unseen = knn.scores([[0], [0, 1], [4]]).tolist()
    # An anime's similarity to itself is left out.
    assert one[0] == 0  # exactly: kept in the ranking, it must tie with the other zeros
    assert one == pytest.approx([0, SIM_01, SIM_02, 0, 0])
    assert two == pytest.approx([SIM_01, SIM_01, SIM_02 + SIM_12, 0, 0])
    assert unseen == [0, 0, 0, 0, 0]  # nobody in training watched 4: no neighbours


def test_the_history_is_left_out_and_ties_are_expected_values():
    popular = MostPopular(TRAIN, N).scores
    # History [1]: anime 0 and 2 tie at the top with 2 users each; the target 2 is first or second.
    [outcome] = rank_with(popular, [user([1], 2)], GROUPS, exclude_history=True)
    assert (outcome.better, outcome.tied) == (0, 2)
    assert outcome.recall(1) == 0.5 and outcome.recall(2) == 1
    # Kept in, anime 1 outranks the target.
    [kept] = rank_with(popular, [user([1], 2)], GROUPS, exclude_history=False)
    assert (kept.better, kept.tied) == (1, 2)


def test_item_knn_ranks_the_anime_watched_with_the_history_first():
    knn = ItemKNN(TRAIN, N).scores
    outcomes = rank_with(knn, [user([0, 1], 2), user([0], 1), user([0], 3)], GROUPS, exclude_history=True, batch_size=2)
    # [0, 1] -> 2 scores highest; [0] -> 1 beats 2; [0] -> 3 ties with 4 (both 0) after 1 and 2.
    assert [(o.better, o.tied) for o in outcomes] == [(0, 1), (0, 1), (2, 2)]
