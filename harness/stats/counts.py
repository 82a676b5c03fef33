"""Bootstrap replicates of the built-in aggregates from how often each run is drawn.

A stratified resample of a task with n available runs draws n of them with replacement. The
built-in aggregates (IQM, mean, median, optimality gap) depend only on how many times each run
is drawn, not on the order of the draws, so this module never builds the resampled scores:

- Draws: a task's n draws are split into groups of g draws. A group is a uniform integer code in
  [0, n**g) whose base-n digits are the drawn runs (exactly g independent uniform draws); the
  codes of several groups come from one random 64-bit integer, and a table maps every code to
  its composition (how often each run is drawn).
- Linear statistics (a task's mean, its mean capped at gamma, and the IQM's always-kept sum and
  zone counts below) are sums over the task's runs of count x weight, so a per-task table holds
  each one for every composition of a group, and a resample's value is the sum over its groups.
- Median: the task means of each resample, selected across tasks at the middle.
- IQM: the pooled available scores are sorted once; a resample keeps the draws whose rank among
  its n draws lies in [n // 4, n - n // 4). A draw's rank depends only on how many draws fall at
  lower sorted positions, so the positions well below the lower cut are always dropped, those
  between the cuts always kept (two more linear statistics), and only two bands of positions
  around the cuts, `BAND_SDS` standard deviations of the number of draws below the cut wide,
  need per-position counts (small per-task tables again, one row per band position of the
  task). A resample whose cut falls outside a band (rare) is recomputed exactly from its draws.

The loops run compiled (`harness.stats.kernels`). Chunks of repetitions can run on several
threads (the kernels release the GIL). Each chunk draws
from its own generator, spawned in chunk order from the generator passed in, so the same
generator state, data and chunk size give bit-identical replicates for any number of threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from math import comb
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from harness.stats import kernels

Kind = Literal["iqm", "mean", "median", "optimality_gap"]

KIND_CODES: dict[Kind, int] = {
    "iqm": kernels.IQM,
    "mean": kernels.MEAN,
    "median": kernels.MEDIAN,
    "optimality_gap": kernels.GAP,
}

CODE_LIMIT = 2**17
"""Most codes per group of draws, so that the code-to-composition table stays in the CPU cache."""

COMPOSITION_LIMIT = 8192
"""Most compositions per group, so that a task's table of linear statistics stays in the CPU cache
(and composition ids fit the kernel's int32)."""

MAX_GROUPS = 12
"""Most groups of draws per task for which counting pays off over resampling the scores."""

TABLE_BYTES = 32 * 2**20
"""Upper bound on the per-task composition tables of one call; larger problems use smaller groups."""

WORD_LIMIT = 2**62
"""Upper bound on the number of codes packed into one random 64-bit integer."""

BAND_SDS = 3.5
"""Half-width of each IQM band, in standard deviations of the number of draws below its cut."""

CHUNK_BYTES = 2 * 2**20
"""Random words per chunk of repetitions (one chunk per thread at a time): 2 MiB ran fastest on the
benchmark problem (1, 4 and 8 MiB were 3-12% slower), and gives threads many chunks to share."""

PILOT = 256
"""Most resamples of the pilot run that finds the median band (`_median_bounds`); at most a
sixteenth of the repetitions asked for, at least 32."""

SLOTS = 64
"""Most task means a repetition keeps for its median (more: recomputed from its draws)."""

BLOCK_BYTES = 8 * 2**20
"""About how much the kernel's per-block working arrays (composition ids, sums, band counts, kept
task means) may use: large blocks, so that every task's tables, once in the CPU cache, serve
many repetitions."""

GAMMA = 1.0
"""The threshold of the built-in optimality gap (`optimality_gap_stack`'s default)."""

FIELDS = ("mean", "capped", "kept", "zones")
"""The linear statistics in a table row: score / runs_t; min(score, GAMMA) / runs_t; the score of
always-kept runs; packed counts of the draws always dropped low and always kept."""

MAX_CELLS = 2**26
"""Most available scores in a matrix for `count_replicates` (the zone counts must stay below the scale)."""


@dataclass(frozen=True)
class _Codebook:
    """Groups of `size` draws from `runs` runs.

    comps: (compositions, runs) how often each run is drawn, one row per distinct composition;
    code_to_comp: (runs**size,) the composition of each code (its base-`runs` digits are the
    drawn runs).
    """

    size: int
    comps: NDArray[np.float64]
    code_to_comp: NDArray[np.intp]


@dataclass(frozen=True)
class _Plan:
    """How the draws of every task with `runs` available runs are coded.

    words: per random 64-bit integer, the sizes of the groups it encodes, least significant
    first. books: group size -> its codebook.
    """

    runs: int
    words: tuple[tuple[int, ...], ...]
    books: dict[int, _Codebook]


@dataclass(frozen=True)
class _Trim:
    """Where an IQM resample cuts, and the sorted positions that need per-position counts.

    low, high: the kept ranks [low, high) of a resample's n draws. task, run, score: (width,)
    the band positions in sorted order (`run` indexes the task's available runs). upper: index
    of the upper band's first position in those arrays (width when the bands merge and no
    always-kept zone lies between them). below, kept: per task, (runs_t,) masks of its runs that
    are always dropped low and always kept. spans: per task, the columns [start, stop) of its
    band positions in a resample's band counts, which hold the positions task by task; row:
    (width,) the column of each band position there. positions: (cells,) the sorted position of
    every available score (cells task by task); ordered: (cells,) the scores in sorted order.
    """

    low: int
    high: int
    task: NDArray[np.intp]
    run: NDArray[np.intp]
    score: NDArray[np.float64]
    upper: int
    below: list[NDArray[np.bool_]]
    kept: list[NDArray[np.bool_]]
    spans: list[tuple[int, int]]
    row: NDArray[np.intp]
    positions: NDArray[np.intp]
    ordered: NDArray[np.float64]


@dataclass(frozen=True)
class _Model:
    """The kernel's read-only arrays for one matrix (`kernels.chunk_replicates` documents each
    one's layout), shared by threads; plans and task_counts say how to draw its words."""

    plans: dict[int, _Plan]
    task_counts: dict[int, int]
    coding: NDArray[np.int64]
    task_groups: NDArray[np.int64]
    code_to_comp: NDArray[np.int32]
    table: NDArray[np.float64]
    band_table: NDArray[np.int32]
    band_offsets: NDArray[np.int64]
    task_bands: NDArray[np.int64]
    walk_rows: NDArray[np.int64]
    walk_scores: NDArray[np.float64]
    walk: NDArray[np.int64]
    cell_positions: NDArray[np.int64]
    sorted_scores: NDArray[np.float64]
    block: int
    slots: int


def count_replicates(
    matrix: NDArray[np.float64],
    kinds: Sequence[Kind],
    rng: np.random.Generator,
    reps: int,
    chunk_bytes: int,
    workers: int = 1,
) -> NDArray[np.float64]:
    """Bootstrap replicates of built-in aggregates over stratified resamples of one matrix.

    matrix: (runs, tasks), checked: NaN = missing run, at least 2 available runs per task.
    kinds: the aggregates, in output order. chunk_bytes: about how much memory one chunk's random
    words may use (the kernel's working arrays add about BLOCK_BYTES per thread). workers: threads
    evaluating chunks at once. Returns (reps, len(kinds)).

    Every chunk draws from its own generator, spawned from `rng` in chunk order, and the chunk
    size depends only on the data and chunk_bytes: the replicates are the same, bit for bit, for
    any number of workers.
    """
    model = _model(matrix)
    codes = np.array([KIND_CODES[kind] for kind in kinds], dtype=np.int64)
    bounds = _median_bounds(model, min(PILOT, max(32, reps // 16))) if "median" in kinds else np.zeros(2)
    words_per_task = max(len(plan.words) for plan in model.plans.values())
    chunk = _chunk_reps(len(model.task_groups) - 1, words_per_task, chunk_bytes)
    sizes = [min(chunk, reps - start) for start in range(0, reps, chunk)]
    generators = chunk_generators(rng, len(sizes))
    out = np.empty((reps, len(kinds)))

    def replicates(index: int) -> None:
        start = index * chunk
        words = _words(model, generators[index], sizes[index])
        _evaluate(model, words, bounds, codes, model.slots, out[start : start + sizes[index]])

    if workers == 1 or len(sizes) == 1:
        for index in range(len(sizes)):
            replicates(index)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(sizes))) as pool:
            list(pool.map(replicates, range(len(sizes))))
    return out


def chunk_generators(rng: np.random.Generator, chunks: int) -> list[np.random.Generator]:
    """One independent generator per chunk of repetitions, in chunk order, all derived from `rng`
    (128 bits drawn from it seed a `SeedSequence`, whose spawned children seed the chunks)."""
    root = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    return [np.random.default_rng(child) for child in root.spawn(chunks)]


def _words(model: _Model, rng: np.random.Generator, size: int) -> NDArray[np.int64]:
    """The random words of `size` repetitions: (word rows, size), plan by plan as `_coding` reads them."""
    parts = [word for runs, plan in model.plans.items() for word in _draw(plan, model.task_counts[runs], rng, size)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _evaluate(
    model: _Model,
    words: NDArray[np.int64],
    bounds: NDArray[np.float64],
    kinds: NDArray[np.int64],
    slots: int,
    out: NDArray[np.float64],
) -> None:
    """Replicates of the repetitions coded by words (word rows, size) into out (size, kinds)."""
    kernels.chunk_replicates(
        words, model.coding, model.task_groups, model.code_to_comp, model.table, model.band_table,
        model.band_offsets, model.task_bands, model.walk_rows, model.walk_scores, model.walk,
        model.cell_positions, model.sorted_scores, bounds, kinds, GAMMA, model.block, slots, out,
    )


def _median_bounds(model: _Model, pilot_reps: int) -> NDArray[np.float64]:
    """The median band: the range of the medians of `pilot_reps` resamples, (2,).

    The pilot draws from a fixed generator of its own: the band changes how fast the median is
    found, never its value (`kernels`)."""
    pilot = np.empty((pilot_reps, 1))
    words = _words(model, np.random.default_rng(0), pilot_reps)
    tasks = len(model.task_groups) - 1
    _evaluate(model, words, np.array([-np.inf, np.inf]), np.array([kernels.MEDIAN]), tasks, pilot)
    return np.array([pilot.min(), pilot.max()])


def _model(matrix: NDArray[np.float64]) -> _Model:
    """Split a checked matrix into tasks and build its coding and tables."""
    values = [column[~np.isnan(column)] for column in matrix.T]  # per task, (runs_t,)
    run_counts = [v.size for v in values]
    plans = _plans(run_counts)
    coding, task_groups, code_to_comp, starts, rows = _coding(plans, run_counts)
    trim = _trim(values)
    band_table, band_offsets = _band_tables(trim, plans, run_counts, coding, task_groups)
    slots = min(len(run_counts), SLOTS)
    # per repetition: composition ids, sums, band counts, kept task means, counters
    groups = int(np.diff(task_groups).max())  # most groups of draws of a task
    block = max(1, BLOCK_BYTES // (4 * groups + 32 + 4 * trim.task.size + 8 * (slots + 1) + 40))
    return _Model(
        plans=plans,
        task_counts={runs: run_counts.count(runs) for runs in plans},
        coding=coding,
        task_groups=task_groups,
        code_to_comp=code_to_comp,
        table=_tables(values, trim, plans, starts, rows),
        band_table=band_table,
        band_offsets=band_offsets,
        task_bands=np.array([0] + [stop for _, stop in trim.spans], dtype=np.int64),
        walk_rows=trim.row.astype(np.int64),
        walk_scores=trim.score,
        walk=np.array([trim.task.size, trim.upper, trim.low, trim.high], dtype=np.int64),
        cell_positions=trim.positions.astype(np.int64),
        sorted_scores=trim.ordered,
        block=block,
        slots=slots,
    )


def _coding(
    plans: dict[int, _Plan], run_counts: list[int]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32], dict[tuple[int, int], int], int]:
    """The kernel's coding of every task's groups of draws.

    Returns coding (groups, 6) and task_groups (tasks + 1,) as `kernels.chunk_replicates` reads
    them, the concatenated code-to-composition tables, the first table row of each (task, group
    size) and the number of table rows. Word rows follow `_draw`: plan by plan (increasing run count),
    word by word, task by task.
    """
    word_base, book_base, row_base = {}, {}, {}
    rows = 0
    for runs, plan in plans.items():
        word_base[runs] = rows
        rows += len(plan.words) * run_counts.count(runs)
    books = []
    offset = 0
    for runs, plan in plans.items():
        for group, book in plan.books.items():
            book_base[runs, group] = offset
            books.append(book.code_to_comp.astype(np.int32))
            offset += book.code_to_comp.size
    table_rows = 0
    for task, runs in enumerate(run_counts):
        for group, book in plans[runs].books.items():
            row_base[task, group] = table_rows
            table_rows += book.comps.shape[0]
    coding, task_groups = [], [0]
    rank = {runs: 0 for runs in plans}  # index of the next task among those of its run count
    for task, runs in enumerate(run_counts):
        plan = plans[runs]
        for index, groups in enumerate(plan.words):
            row = word_base[runs] + index * run_counts.count(runs) + rank[runs]
            for position, group in enumerate(groups):
                divisor = 0 if position == len(groups) - 1 else runs**group
                coding.append((row, divisor, book_base[runs, group], row_base[task, group], runs, group))
        rank[runs] += 1
        task_groups.append(len(coding))
    return (
        np.array(coding, dtype=np.int64),
        np.array(task_groups, dtype=np.int64),
        np.concatenate(books),
        row_base,
        table_rows,
    )


def _tables(
    values: list[NDArray[np.float64]],
    trim: _Trim,
    plans: dict[int, _Plan],
    starts: dict[tuple[int, int], int],
    rows: int,
) -> NDArray[np.float64]:
    """The linear statistics (`FIELDS`) for every composition of every task's groups, in table
    order (`_coding`: `starts` holds the first row of each (task, group size)): (rows, 4)."""
    out = np.empty((rows, 4))
    for runs, plan in plans.items():
        tasks = [task for task, v in enumerate(values) if v.size == runs]
        v = np.stack([values[task] for task in tasks])  # (tasks, runs)
        below = np.stack([trim.below[task] for task in tasks])
        kept = np.stack([trim.kept[task] for task in tasks])
        weights = np.stack(
            [v / runs, np.minimum(v, GAMMA) / runs, np.where(kept, v, 0.0), below + kernels.ZONE_SCALE * kept], axis=2
        )  # (tasks, runs, 4)
        for group, book in plan.books.items():
            for task, table in zip(tasks, book.comps @ weights, strict=True):  # (compositions, 4) each
                out[starts[task, group] : starts[task, group] + len(table)] = table
    return out


def _band_tables(
    trim: _Trim,
    plans: dict[int, _Plan],
    run_counts: list[int],
    coding: NDArray[np.int64],
    task_groups: NDArray[np.int64],
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """The draws at each band position of a task for every composition of its groups.

    Returns the tables concatenated, each (compositions, the task's band positions) row-major,
    and the offset of each group's table there (groups,); tasks without band positions have
    none (offset 0, never read)."""
    offsets = np.zeros(len(coding), dtype=np.int64)
    parts, base = [np.zeros(1, dtype=np.int32)], 1
    for task, runs in enumerate(run_counts):
        start, stop = trim.spans[task]
        if start == stop:
            continue
        band_runs = trim.run[np.flatnonzero(trim.task == task)]  # (positions,) the run at each
        table_at = {}
        for group, book in plans[runs].books.items():
            table_at[group] = base
            parts.append(book.comps[:, band_runs].astype(np.int32).ravel())  # (compositions x positions,)
            base += parts[-1].size
        groups = slice(task_groups[task], task_groups[task + 1])
        offsets[groups] = [table_at[int(size)] for size in coding[groups, 5]]
    return np.concatenate(parts), offsets


def pays_off(matrix: NDArray[np.float64]) -> bool:
    """Whether counting is expected to be faster than resampling the scores of a checked matrix.

    matrix: (runs, tasks), NaN = missing run. True when no task needs more than MAX_GROUPS groups
    of draws and the matrix has fewer than MAX_CELLS available scores.
    """
    run_counts = np.count_nonzero(~np.isnan(matrix), axis=0).tolist()  # per task
    groups = max(len(_group_sizes(runs, run_counts.count(runs))) for runs in set(run_counts))
    return groups <= MAX_GROUPS and sum(run_counts) < MAX_CELLS


def _group_sizes(runs: int, tasks: int) -> list[int]:
    """How the `runs` draws of a task are grouped: as many as possible per group within CODE_LIMIT,
    COMPOSITION_LIMIT and, for `tasks` tables of the `FIELDS`, TABLE_BYTES."""
    size = 1
    while (
        size < runs
        and runs ** (size + 1) <= CODE_LIMIT
        and comb(runs + size, size + 1) <= COMPOSITION_LIMIT
        and tasks * comb(runs + size, size + 1) * len(FIELDS) * 8 <= TABLE_BYTES
    ):
        size += 1
    return [size] * (runs // size) + ([runs % size] if runs % size else [])


def _plans(run_counts: list[int]) -> dict[int, _Plan]:
    """A coding plan per distinct run count (see `_group_sizes`), groups packed into words."""
    plans = {}
    for runs in sorted(set(run_counts)):
        sizes = _group_sizes(runs, run_counts.count(runs))
        words: list[tuple[int, ...]] = []
        current: list[int] = []
        for group in sizes:
            if current and runs ** (sum(current) + group) > WORD_LIMIT:
                words.append(tuple(current))
                current = []
            current.append(group)
        words.append(tuple(current))
        plans[runs] = _Plan(runs, tuple(words), {group: _codebook(runs, group) for group in sorted(set(sizes))})
    return plans


@cache
def _codebook(runs: int, size: int) -> _Codebook:
    """Enumerate the codes of `size` draws from `runs` runs and their compositions (cached: pure, read-only)."""
    codes = np.arange(runs**size, dtype=np.int64)  # (codes,)
    digits = _digits(codes, runs, size)  # per draw, (codes,) drawn runs
    # Codes with the same draws in another order share a composition, keyed by the code of its
    # draws in increasing order (an odd-even transposition sort of the digit columns).
    for step in range(size):
        for i in range(step % 2, size - 1, 2):
            digits[i], digits[i + 1] = np.minimum(digits[i], digits[i + 1]), np.maximum(digits[i], digits[i + 1])
    key = np.zeros_like(codes)
    for place, digit in enumerate(digits):
        key += digit * runs**place
    present = np.zeros(codes.size, dtype=bool)
    present[key] = True
    distinct = np.flatnonzero(present)  # (compositions,) the keys
    comps = np.zeros((distinct.size, runs))  # (compositions, runs)
    for drawn in _digits(distinct, runs, size):
        comps[np.arange(distinct.size), drawn] += 1.0
    code_to_comp = (np.cumsum(present) - 1)[key]
    return _Codebook(size, comps, code_to_comp.astype(np.intp))


def _digits(codes: NDArray[np.int64], runs: int, size: int) -> list[NDArray[np.int64]]:
    """The base-`runs` digits of codes, least significant first: `size` arrays shaped like codes."""
    digits = []
    for _ in range(size):
        quotient = codes // runs
        digits.append(codes - quotient * runs)
        codes = quotient
    return digits


def _chunk_reps(tasks: int, words: int, chunk_bytes: int) -> int:
    """Repetitions per chunk of about `chunk_bytes` of random words (8 bytes per word of every
    task and repetition)."""
    return max(1, chunk_bytes // (8 * tasks * words))


def _draw(plan: _Plan, tasks: int, rng: np.random.Generator, size: int) -> list[NDArray[np.int64]]:
    """The random integers of one chunk for the `tasks` tasks of a plan: per word, (tasks, size)."""
    return [rng.integers(0, plan.runs ** sum(groups), size=(tasks, size), dtype=np.int64) for groups in plan.words]


def _trim(values: list[NDArray[np.float64]]) -> _Trim:
    """Sort the pooled available scores once and choose the two IQM bands."""
    runs = np.array([v.size for v in values])  # (tasks,)
    pooled = np.concatenate(values)  # (n,) cells, task-major
    owner = np.repeat(np.arange(len(values)), runs)  # (n,) task of each cell
    first = np.cumsum(runs) - runs  # (tasks,) first cell of each task
    order = np.argsort(pooled, kind="stable")  # sorted position -> cell
    position = np.empty_like(order)
    position[order] = np.arange(order.size)  # cell -> sorted position
    n = pooled.size
    low, high = n // 4, n - n // 4

    def band(cut: int) -> tuple[int, int]:
        # draws at positions below `cut`: a sum over tasks of binomial(runs_t, share of its runs below)
        share = np.bincount(owner[position < cut], minlength=len(values)) / runs
        half = int(np.ceil(BAND_SDS * np.sqrt(np.sum(runs * share * (1.0 - share))))) + 1
        return max(cut - half, 0), min(cut + half, n)

    lower, upper = band(low), band(high)
    if lower[1] >= upper[0]:  # the bands merge
        start, stop = min(lower[0], upper[0]), max(lower[1], upper[1])
        positions = np.arange(start, stop)
        kept_zone = (stop, stop)
        upper_index = positions.size
    else:
        positions = np.concatenate([np.arange(*lower), np.arange(*upper)])
        kept_zone = (lower[1], upper[0])
        upper_index = lower[1] - lower[0]
    cell = order[positions]
    task = owner[cell]
    stops = np.cumsum(np.bincount(task, minlength=len(values)))  # (tasks,) end of each task's band rows
    per_task = np.split(position, np.cumsum(runs)[:-1])  # per task, (runs_t,) sorted positions
    return _Trim(
        low=low,
        high=high,
        task=task,
        run=cell - first[task],
        score=pooled[cell],
        upper=upper_index,
        below=[p < positions[0] for p in per_task],
        kept=[(p >= kept_zone[0]) & (p < kept_zone[1]) for p in per_task],
        spans=list(zip(np.append(0, stops[:-1]).tolist(), stops.tolist(), strict=True)),
        row=np.argsort(np.argsort(task, kind="stable")),
        positions=position,
        ordered=pooled[order],
    )


