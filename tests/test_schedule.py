"""Learning-rate schedules: warm-up, cosine and warm-up-stable-decay shapes."""

import pytest

from tasks.training.schedule import lr_factor


def test_wsd_warms_up_holds_then_decays_linearly_to_the_floor():
    f = [lr_factor(s, warmup_steps=10, max_steps=100, min_ratio=0.1, schedule="wsd", decay_fraction=0.2)
         for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(v == 1.0 for v in f[10:80])  # the stable plateau
    decay = f[80:]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    steps = [a - b for a, b in zip(decay, decay[1:])]
    assert max(steps) == pytest.approx(min(steps))  # linear
    assert f[100] == pytest.approx(0.1)


def test_wsd_decay_never_starts_inside_the_warm_up():
    f = [lr_factor(s, warmup_steps=50, max_steps=60, min_ratio=0.0, schedule="wsd", decay_fraction=0.5)
         for s in range(61)]
    assert f[49] == 1.0 and f[50] == 1.0 and f[60] == 0.0


def test_cosine_is_the_default_and_ends_at_the_floor():
    f = [lr_factor(s, warmup_steps=0, max_steps=10, min_ratio=0.2) for s in range(11)]
    assert f[0] == 1.0 and f[5] == pytest.approx(0.6) and f[10] == pytest.approx(0.2)
