from itertools import pairwise

import pytest

from animind_trainer.schedule import lr_factor, warmup_steps


def test_linear_warmup_reaches_peak_then_decays_without_a_wasted_step():
    factors = [lr_factor(step, 10, 0.2, "linear") for step in range(1, 11)]
    assert warmup_steps(10, 0.2) == 2
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a > b for a, b in pairwise(factors[2:]))
    assert factors[-1] == pytest.approx(1 / 8)


def test_cosine_decay_is_monotone_and_positive():
    factors = [lr_factor(step, 20, 0.0, "cosine") for step in range(1, 21)]
    assert factors[0] == 1.0
    assert all(a > b > 0 for a, b in pairwise(factors))


def test_steps_past_the_total_get_zero():
    assert lr_factor(11, 10, 0.1, "linear") == 0.0
    assert lr_factor(1, 1, 0.0, "cosine") == 1.0
