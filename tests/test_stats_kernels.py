"""The compiled loops of the counting bootstrap, piece by piece, against plain integer and numpy arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import kernels


def test_decode_splits_the_largest_words_exactly() -> None:
    # One task whose word holds 21 groups of one draw from 7 runs, then the rest: words up to
    # 2**62, where the reciprocal's quotient is off by far more than 1 (2**62 / 7 has 60
    # significant bits), so only the correction loops make it exact. An identity codebook
    # (code -> code) makes the ids the codes themselves.
    rng = np.random.default_rng(0)
    words = np.concatenate([[0, 6, 7, 2**62 - 1, 2**62 - 7, 2**61 + 3, 5 * 7**21], rng.integers(0, 2**62, size=500)])
    coding = np.array([[0, 7, 0, 0, 0, 0]] * 21 + [[0, 0, 0, 0, 0, 0]], dtype=np.int64)
    code_to_comp = np.arange(7 * 2**4, dtype=np.int32)  # 2**62 / 7**21 < 7 * 2**4
    n = words.size
    ids = np.empty((22, n), dtype=np.int32)
    kernels._decode(words[None, :].astype(np.int64), coding, code_to_comp, 0, 22, 0, n, np.empty(n, dtype=np.int64),
                    ids)
    rest = [int(word) for word in words]  # Python integers: exact
    for k in range(21):
        assert ids[k].tolist() == [value % 7 for value in rest]
        rest = [value // 7 for value in rest]
    assert ids[21].tolist() == rest


@pytest.mark.parametrize("size", [1, 2, 3, 10, 37, 96, 97, 300, 301])
def test_median_matches_numpy(size: int) -> None:
    rng = np.random.default_rng(size)
    for values in (rng.random(size), np.round(rng.random(size), 1)):  # distinct values, then many ties
        assert kernels._median_at(values.copy(), size // 2, size % 2 == 1) == np.median(values)


def test_selection_orders_around_the_kth() -> None:
    values = np.random.default_rng(3).integers(0, 20, size=200).astype(float)
    for k in (0, 1, 99, 100, 199):
        chosen = values.copy()
        kernels._select(chosen, k)
        assert chosen[k] == np.sort(values)[k]
        assert (chosen[:k] <= chosen[k]).all() and (chosen[k + 1 :] >= chosen[k]).all()


def test_banded_median_by_hand() -> None:
    # 7 task means 1..7, band [2.5, 5.5]: 2 below (1, 2), kept 3, 4, 5, 2 above. The median, the
    # 3rd smallest counting from 0, is the kept value at 3 - 2 = 1: 4.
    kept = np.array([5.0, 3.0, 4.0])
    assert kernels._banded_median(kept.copy(), 2, 7) == 4.0
    # 6 task means: 1 below, kept 3, 4, 5, and 2 above. The middles, the 2nd and 3rd smallest
    # counting from 0, are kept values 1 and 2: (4 + 5) / 2.
    assert kernels._banded_median(np.array([3.0, 5.0, 4.0]), 1, 6) == 4.5
    # A middle value outside the band: NaN, and the caller recomputes.
    assert np.isnan(kernels._banded_median(kept.copy(), 4, 7))  # the median is below the band
    assert np.isnan(kernels._banded_median(kept.copy(), 0, 7))  # above it
    assert np.isnan(kernels._banded_median(np.array([3.0, 5.0, 4.0]), 3, 6))  # the lower middle is below
