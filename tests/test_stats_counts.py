"""Bootstrap replicates from run counts: exact against the resamples they stand for, and routing."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.stats import bootstrap as bootstrap_module
from harness.stats import counts

KINDS: tuple[counts.Kind, ...] = ("iqm", "mean", "median", "optimality_gap")


def _replayed_aggregates(
    matrix: np.ndarray, kinds: tuple[counts.Kind, ...], seed: int, reps: int, chunk_bytes: int
) -> np.ndarray:
    """The built-in kernels on the very resamples `count_replicates` draws from default_rng(seed): (reps, kinds)."""
    values = [column[~np.isnan(column)] for column in matrix.T]
    run_counts = [v.size for v in values]
    plans = counts._plans(run_counts)
    words_per_task = max(len(plan.words) for plan in plans.values())
    chunk = counts._chunk_reps(len(values), words_per_task, chunk_bytes)
    starts = range(0, reps, chunk)
    parts = []
    for start, rng in zip(starts, counts.chunk_generators(np.random.default_rng(seed), len(starts)), strict=True):
        size = min(chunk, reps - start)
        samples = np.full((size, max(run_counts), len(values)), np.nan)  # (size, runs, tasks)
        for runs, plan in plans.items():  # in the kernel's order: plan by plan, word by word
            tasks = [task for task, count in enumerate(run_counts) if count == runs]
            scores = np.stack([values[task] for task in tasks])  # (tasks of this run count, runs)
            drawn = []  # per draw, (tasks, size) run indices: the base-`runs` digits of each group's code
            for groups, word in zip(plan.words, counts._draw(plan, len(tasks), rng, size), strict=True):
                for index, group in enumerate(groups):
                    divisor = runs**group
                    code, word = (word % divisor, word // divisor) if index < len(groups) - 1 else (word, word)
                    for _ in range(group):
                        drawn.append(code % runs)
                        code = code // runs
            rows = np.arange(len(tasks))[:, None]
            samples[:, :runs, tasks] = np.stack([scores[rows, draw] for draw in drawn]).transpose(2, 0, 1)
        parts.append(np.stack([stats.AGGREGATES[kind](samples) for kind in kinds], axis=1))
    return np.concatenate(parts)


def _unequal(seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).random((12, 40))
    matrix[np.random.default_rng(seed + 1).random((12, 40)) < 0.3] = np.nan
    matrix[:3] = np.random.default_rng(seed + 2).random((3, 40))  # every task keeps at least 3 runs
    return matrix


@pytest.mark.parametrize(
    ("matrix", "chunk_bytes"),
    [
        (np.random.default_rng(0).normal(0.6, 0.3, size=(10, 60)), 2**20),  # two groups of 5 draws per task
        (np.random.default_rng(1).random((3, 7)), 2**20),  # one group; the two IQM bands merge
        (np.random.default_rng(2).random((2, 1)), 2**20),
        (np.random.default_rng(3).random((40, 5)), 2**20),  # several random words per task
        (np.round(np.random.default_rng(4).random((7, 30)), 1), 2**20),  # ties
        (_unequal(5), 2**20),  # unequal runs: several run counts, each with its own coding
        (np.random.default_rng(6).random((5, 12)), 3_000),  # many small chunks
    ],
)
def test_replicates_are_the_aggregates_of_their_resamples(matrix: np.ndarray, chunk_bytes: int) -> None:
    replicates = counts.count_replicates(matrix, KINDS, np.random.default_rng(9), 700, chunk_bytes)
    np.testing.assert_allclose(replicates, _replayed_aggregates(matrix, KINDS, 9, 700, chunk_bytes), rtol=0, atol=1e-12)


def test_resamples_outside_the_median_band_are_recomputed(monkeypatch: pytest.MonkeyPatch) -> None:
    # One slot: a repetition keeping two task means in the band is recomputed from its draws, as is
    # one whose median falls outside it (the pilot's range is narrower than the replicates').
    monkeypatch.setattr(counts, "SLOTS", 1)
    matrix = np.random.default_rng(11).normal(0.5, 0.2, size=(6, 41))
    replicates = counts.count_replicates(matrix, ("median",), np.random.default_rng(2), 2_000, 2**20)
    np.testing.assert_allclose(replicates, _replayed_aggregates(matrix, ("median",), 2, 2_000, 2**20), rtol=0,
                               atol=1e-12)


def test_resamples_the_iqm_bands_miss_are_recomputed(monkeypatch: pytest.MonkeyPatch) -> None:
    # With zero-width bands nearly every resample's cut falls outside them and is rebuilt from its draws.
    monkeypatch.setattr(counts, "BAND_SDS", 0.0)
    matrix = np.random.default_rng(7).random((6, 50))
    replicates = counts.count_replicates(matrix, ("iqm",), np.random.default_rng(1), 300, 2**20)
    np.testing.assert_allclose(replicates, _replayed_aggregates(matrix, ("iqm",), 1, 300, 2**20), rtol=0, atol=1e-12)


def test_codebook_by_hand() -> None:
    # 2 draws from 3 runs: codes 0..8 are (first draw, second draw) = (code % 3, code // 3).
    # Compositions (counts of runs 0, 1, 2): 6 of them; each two-distinct-run composition has 2 codes
    # ((a, b) and (b, a)), each repeated-run composition 1 -- the multinomial probabilities times 9.
    book = counts._codebook(3, 2)
    assert book.comps.shape == (6, 3)
    assert (book.comps.sum(axis=1) == 2).all()
    assert book.code_to_comp[5] == book.code_to_comp[7]  # 5 = (2, 1) and 7 = (1, 2)
    multiplicity = np.bincount(book.code_to_comp, minlength=6)
    repeated = book.comps.max(axis=1) == 2
    np.testing.assert_array_equal(multiplicity, np.where(repeated, 1, 2))


def test_a_task_is_coded_in_words_of_groups() -> None:
    # 10 runs: groups of 5 draws (10**5 codes, 2002 compositions), both in one 64-bit word.
    assert counts._plans([10])[10].words == ((5, 5),)
    # 13 runs: 13**5 > CODE_LIMIT = 2**17, so groups of 4 and a remainder of 1; 13**13 < 2**62: one word.
    assert counts._plans([13])[13].words == ((4, 4, 4, 1),)
    # 40 runs: triples have comb(42, 3) = 11480 > COMPOSITION_LIMIT compositions, so pairs;
    # 40**10 < 2**62 < 40**12: five pairs per word, four words.
    assert counts._plans([40])[40].words == ((2, 2, 2, 2, 2),) * 4


def test_counting_is_used_where_it_pays_off() -> None:
    # 30 runs: 10 groups of 3 draws (<= MAX_GROUPS = 12); 40 runs: 20 pairs; 1000 runs: single draws.
    assert counts.pays_off(np.ones((30, 5)))
    assert not counts.pays_off(np.ones((40, 5)))
    assert not counts.pays_off(np.ones((1000, 2)))
    unequal = np.ones((40, 3))
    unequal[30:, :] = np.nan  # at most 30 available runs per task
    assert counts.pays_off(unequal)


def test_intervals_agree_with_the_resampled_scores_path() -> None:
    # Wrapping a built-in kernel hides it from the counts route: the same data through both routes
    # must give the same intervals up to Monte Carlo error (20,000 repetitions: ~0.002 here).
    scores = np.random.default_rng(8).normal(0.5, 0.3, size=(5, 25))
    fast = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=20_000)
    wrapped = {name: (lambda stack, kernel=kernel: kernel(stack)) for name, kernel in stats.AGGREGATES.items()}
    slow = stats.bootstrap_intervals(scores, wrapped, np.random.default_rng(1), reps=20_000)
    for name in stats.AGGREGATES:
        assert fast[name].point == slow[name].point
        assert fast[name].low == pytest.approx(slow[name].low, abs=0.01)
        assert fast[name].high == pytest.approx(slow[name].high, abs=0.01)


def test_built_in_aggregates_take_the_counts_route(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_resampled_scores(*args: object) -> None:
        raise AssertionError("resampled scores were built")

    monkeypatch.setattr(bootstrap_module, "_replicates", no_resampled_scores)
    scores = np.random.default_rng(0).random((4, 6))
    for method in ("percentile", "bca"):
        stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=200, method=method)
    with pytest.raises(AssertionError, match="resampled scores"):
        stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=200, resample_tasks=True)
    with pytest.raises(AssertionError, match="resampled scores"):
        stats.bootstrap_intervals(scores, {"iqm": lambda s: stats.iqm_stack(s)}, np.random.default_rng(0), reps=200)


def test_replicates_are_bit_identical_for_any_number_of_threads() -> None:
    # 20,000-byte chunks of 41 repetitions (60 tasks, one random word each): 13 chunks, each with its own
    # spawned generator, finishing in any order.
    matrix = np.random.default_rng(10).normal(0.6, 0.3, size=(10, 60))
    one = counts.count_replicates(matrix, KINDS, np.random.default_rng(4), 500, 20_000, workers=1)
    for workers in (2, 3, 8):
        many = counts.count_replicates(matrix, KINDS, np.random.default_rng(4), 500, 20_000, workers=workers)
        np.testing.assert_array_equal(many, one)
    other = counts.count_replicates(matrix, KINDS, np.random.default_rng(5), 500, 20_000, workers=2)
    assert not np.array_equal(other, one)


def test_intervals_are_bit_identical_for_any_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counts, "CHUNK_BYTES", 50_000)  # 15 chunks of 208 repetitions (one random word per task)
    scores = np.random.default_rng(12).normal(0.5, 0.3, size=(8, 30))
    for method in ("percentile", "bca"):
        one = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(3), reps=3_000, method=method,
                                        workers=1)
        two = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(3), reps=3_000, method=method,
                                        workers=2)
        default = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(3), reps=3_000,
                                            method=method)
        assert one == two == default  # dataclass equality compares the floats exactly


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_integer(workers: object) -> None:
    with pytest.raises(stats.StatsInputError, match="workers"):
        stats.bootstrap_intervals(np.ones((3, 4)), stats.AGGREGATES, np.random.default_rng(0), reps=10,
                                  workers=workers)  # type: ignore[arg-type]
