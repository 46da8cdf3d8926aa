"""SASRec learns a sequential rule that popularity cannot see, and the same seed gives the same model."""

import random

import torch

from animind_trainer.recommend.baselines import MostPopular, rank_with
from animind_trainer.recommend.data import HeldOutUser
from animind_trainer.recommend.metrics import summarize
from animind_trainer.recommend.request import SASRecSettings
from animind_trainer.recommend.sasrec import SASRec, train_sasrec

N = 40
# Small and quick, but the paper's architecture; a larger lr makes up for the few epochs.
SETTINGS = SASRecSettings(hidden=32, blocks=2, heads=1, max_len=16, dropout=0.1, lr=1e-2, epochs=10, batch_size=32)


def runs(count: int, seed: int) -> list[list[int]]:
    """Histories where anime i is always followed by i + 1 (mod N), from random starts."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        start, length = rng.randrange(N), rng.randrange(4, 12)
        out.append([(start + i) % N for i in range(length)])
    return out


def held_out(sequences):
    return [
        HeldOutUser(user_id=i, history=s[:-1], target=s[-1], prompt="-", sentiment="<liked>", history_length=len(s) - 1)
        for i, s in enumerate(sequences)
    ]


def test_sasrec_learns_that_i_is_followed_by_i_plus_1_and_beats_most_popular():
    train, users = runs(300, seed=0), held_out(runs(100, seed=1))
    groups = torch.arange(N)[:, None].expand(N, 8)
    sasrec = train_sasrec(train, N, SETTINGS, seed=7)
    learned = summarize(rank_with(sasrec.scores, users, groups, exclude_history=True), [1, 5], 5)
    popular = summarize(rank_with(MostPopular(train, N).scores, users, groups, exclude_history=True), [1, 5], 5)
    assert learned["recall"]["1"] > 0.6
    assert learned["recall"]["5"] > popular["recall"]["5"] + 0.5


def test_the_same_seed_trains_the_same_model_whatever_the_global_random_state():
    train = runs(60, seed=2)
    settings = SASRecSettings(hidden=16, max_len=8, epochs=2, batch_size=16)
    histories = [s[:-1] for s in runs(5, seed=3)]
    torch.manual_seed(0)
    first = train_sasrec(train, N, settings, seed=11).scores(histories)
    torch.manual_seed(1)
    again = train_sasrec(train, N, settings, seed=11).scores(histories)
    other = train_sasrec(train, N, settings, seed=12).scores(histories)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_each_position_sees_only_the_items_before_it():
    model = SASRec(N, SETTINGS).eval()
    sequence = torch.tensor([[0, 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]])
    changed = sequence.clone()
    changed[0, 10:] = torch.tensor([30, 31, 32, 33, 34, 35])
    with torch.no_grad():
        before, after = model(sequence), model(changed)
    assert torch.allclose(before[0, :10], after[0, :10])
    assert not torch.allclose(before[0, 10:], after[0, 10:])
