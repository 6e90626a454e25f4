"""The paired statistics: flips, McNemar's exact test and the Agresti-Min interval, against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from halfconv.evaluation import paired_accuracy


def _predictions(to_wrong: int, to_right: int, both_right: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels all 0; the baseline and the model right (0) or wrong (1) in the four paired cells."""
    cells = [(0, 1)] * to_wrong + [(1, 0)] * to_right + [(0, 0)] * both_right + [(1, 1)] * both_wrong
    baseline, model = (np.array(c, dtype=np.int64) for c in zip(*cells))
    return np.zeros(len(cells), dtype=np.int64), baseline, model


@pytest.mark.parametrize(
    ("to_wrong", "to_right", "p"),
    [
        (0, 0, 1.0),  # no discordant image: no evidence either way
        (5, 0, 2 / 32),  # 2 * P(X <= 0 | n = 5, 1/2)
        (11, 9, 2 * sum(math.comb(20, k) for k in range(10)) / 2**20),
        (30, 10, 2 * sum(math.comb(40, k) for k in range(11)) / 2**40),
        (500, 500, 1.0),  # symmetric: capped at 1
    ],
)
def test_exact_mcnemar(to_wrong: int, to_right: int, p: float) -> None:
    labels, baseline, model = _predictions(to_wrong, to_right, 100, 20)
    paired = paired_accuracy(labels, baseline, model)
    assert (paired.to_wrong, paired.to_right) == (to_wrong, to_right)
    assert paired.mcnemar_p == pytest.approx(min(1.0, p), rel=1e-9)


def test_agresti_min_interval() -> None:
    # b = 11 + 0.5, c = 9 + 0.5, n = 10,000 + 2: delta = -2 / 10002, half-width 1.96 sqrt(21 - 4 / 10002) / 10002.
    labels, baseline, model = _predictions(11, 9, 9060, 920)
    low, high = paired_accuracy(labels, baseline, model).delta_ci95_pp
    half = 1.959963984540054 * math.sqrt(21 - 4 / 10002) / 10002
    assert (low, high) == pytest.approx(((-2 / 10002 - half) * 100, (-2 / 10002 + half) * 100), rel=1e-12)
    assert (round(low, 2), round(high, 2)) == (-0.11, 0.07)


def test_interval_of_identical_predictions_is_narrow_but_not_empty() -> None:
    labels, baseline, model = _predictions(0, 0, 9000, 1000)
    low, high = paired_accuracy(labels, baseline, model).delta_ci95_pp
    assert low == pytest.approx(-high) and 0 < high < 0.02
