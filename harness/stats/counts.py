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
- Median: the task means of each resample, partitioned across tasks at the middle.
- IQM: the pooled available scores are sorted once; a resample keeps the draws whose rank among
  its n draws lies in [n // 4, n - n // 4). A draw's rank depends only on how many draws fall at
  lower sorted positions, so the positions well below the lower cut are always dropped, those
  between the cuts always kept (two more linear statistics), and only two bands of positions
  around the cuts, `BAND_SDS` standard deviations of the number of draws below the cut wide,
  need per-position counts (small per-task tables again, one row per band position of the
  task). A resample whose cut falls outside a band (rare) is recomputed exactly from its draws.

Chunks of repetitions can run on several threads (numpy releases the GIL in its loops). Each
chunk draws from its own generator, spawned in chunk order from the generator passed in, so the
same generator state, data and chunk size give bit-identical replicates for any number of threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from math import comb
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from harness.stats.aggregates import iqm_stack

Kind = Literal["iqm", "mean", "median", "optimality_gap"]

CODE_LIMIT = 2**17
"""Most codes per group of draws, so that the code-to-composition table stays in the CPU cache."""

COMPOSITION_LIMIT = 8192
"""Most compositions per group, so that a task's table of linear statistics stays in the CPU cache."""

MAX_GROUPS = 12
"""Most groups of draws per task for which counting pays off over resampling the scores."""

TABLE_BYTES = 32 * 2**20
"""Upper bound on the per-task composition tables of one call; larger problems use smaller groups."""

WORD_LIMIT = 2**62
"""Upper bound on the number of codes packed into one random 64-bit integer."""

BAND_SDS = 3.5
"""Half-width of each IQM band, in standard deviations of the number of draws below its cut."""

BLOCK_TASKS = 8
"""Tasks whose codes are decoded together, so that their composition ids stay in the CPU cache."""

MEDIAN_BLOCK = 256
"""Resamples whose task means are partitioned together for the median."""

GAMMA = 1.0
"""The threshold of the built-in optimality gap (`optimality_gap_stack`'s default)."""

_ZONE_SCALE = 2.0**26
"""Packs two draw counts (each below 2**26) into one exactly summable float: below + scale x kept."""

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
    of the upper band's first position in those arrays; `merged` when the bands touch and no
    always-kept zone lies between them. below, kept: per task, (runs_t,) masks of its runs that
    are always dropped low and always kept. spans: per task, the rows [start, stop) of its band
    positions in a chunk's band counts, which hold the positions task by task; row: (width,) the
    row of each band position there.
    """

    low: int
    high: int
    task: NDArray[np.intp]
    run: NDArray[np.intp]
    score: NDArray[np.float64]
    upper: int
    merged: bool
    below: list[NDArray[np.bool_]]
    kept: list[NDArray[np.bool_]]
    spans: list[tuple[int, int]]
    row: NDArray[np.intp]


@dataclass(frozen=True)
class _Model:
    """Everything a chunk of repetitions needs, fixed by the data: read-only, shared by threads.

    values: per task, (runs_t,) its available scores. tables: per task, group size ->
    (compositions, fields) its linear statistics (`layout`). band_tables: per task, group size
    -> (band positions of the task, compositions) its draws at each of its band positions; empty
    without `trim`.
    """

    kinds: tuple[Kind, ...]
    values: list[NDArray[np.float64]]
    layout: tuple[str, ...]
    plans: dict[int, _Plan]
    tables: list[dict[int, NDArray[np.float64]]]
    band_tables: list[dict[int, NDArray[np.int32]]]
    trim: _Trim | None


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
    kinds: the aggregates, in output order. chunk_bytes: about how much working memory one
    chunk of repetitions may use. workers: threads evaluating chunks at once (memory: about
    workers x chunk_bytes). Returns (reps, len(kinds)).

    Every chunk draws from its own generator, spawned from `rng` in chunk order, and the chunk
    size depends only on the data and chunk_bytes: the replicates are the same, bit for bit,
    for any number of workers.
    """
    model = _model(matrix, tuple(kinds))
    trim = model.trim
    words_per_task = max(len(plan.words) for plan in model.plans.values())
    groups_per_word = max(len(groups) for plan in model.plans.values() for groups in plan.words)
    width = 0 if trim is None else trim.task.size
    chunk = _chunk_reps(len(model.values), words_per_task, groups_per_word, width, chunk_bytes)
    sizes = [min(chunk, reps - start) for start in range(0, reps, chunk)]
    generators = chunk_generators(rng, len(sizes))

    def replicates(index: int) -> NDArray[np.float64]:
        return _chunk_replicates(model, generators[index], sizes[index])

    if workers == 1 or len(sizes) == 1:
        parts = [replicates(index) for index in range(len(sizes))]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(sizes))) as pool:
            parts = list(pool.map(replicates, range(len(sizes))))
    return np.concatenate(parts, axis=0)


def chunk_generators(rng: np.random.Generator, chunks: int) -> list[np.random.Generator]:
    """One independent generator per chunk of repetitions, in chunk order, all derived from `rng`
    (128 bits drawn from it seed a `SeedSequence`, whose spawned children seed the chunks)."""
    root = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    return [np.random.default_rng(child) for child in root.spawn(chunks)]


def _model(matrix: NDArray[np.float64], kinds: tuple[Kind, ...]) -> _Model:
    """Split a checked matrix into tasks and build their codings and tables."""
    values = [column[~np.isnan(column)] for column in matrix.T]  # per task, (runs_t,)
    trim = _trim(values) if "iqm" in kinds else None
    layout = _layout(kinds)
    plans = _plans([v.size for v in values], len(layout))
    # per task, group size -> (compositions, fields)
    tables: list[dict[int, NDArray[np.float64]]] = [{} for _ in values]
    for runs, plan in plans.items():
        tasks = [task for task, v in enumerate(values) if v.size == runs]
        weights = np.stack([_weights(task, values[task], layout, trim) for task in tasks])  # (tasks, runs, fields)
        for group, book in plan.books.items():
            for task, table in zip(tasks, book.comps @ weights, strict=True):
                tables[task][group] = table
    band_tables = [{} if trim is None else _band_tables(trim, task, plans[v.size]) for task, v in enumerate(values)]
    return _Model(kinds, values, layout, plans, tables, band_tables, trim)


def _chunk_replicates(model: _Model, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
    """The replicates of one chunk of `size` repetitions drawn from `rng`: (size, kinds)."""
    values, plans, layout, trim = model.values, model.plans, model.layout, model.trim
    words = {runs: _draw(plan, sum(v.size == runs for v in values), rng, size) for runs, plan in plans.items()}
    sums, means, band = _evaluate(model, words)
    out = np.empty((size, len(model.kinds)))
    for column, kind in enumerate(model.kinds):
        target = out[:, column]
        if kind == "mean":
            target[:] = sums[:, layout.index("mean")] / len(values)
        elif kind == "optimality_gap":
            target[:] = GAMMA - sums[:, layout.index("capped")] / len(values)
        elif kind == "median":
            assert means is not None
            target[:] = _median(means)
        else:
            assert trim is not None and band is not None
            kept_sum, zones = sums[:, layout.index("kept")], sums[:, layout.index("zones")]
            target[:] = _trimmed_means(trim, kept_sum, zones, band)
            missed = np.flatnonzero(np.isnan(target))
            if missed.size:
                target[missed] = iqm_stack(_samples(values, plans, words, missed))
    return out


def _layout(kinds: Sequence[Kind]) -> tuple[str, ...]:
    """The linear statistics the aggregates need, padded to 1, 2 or 4 (fast row gathers).

    mean: score / runs_t; capped: min(score, GAMMA) / runs_t; kept: the score of always-kept
    runs; zones: packed counts of the draws always dropped low and always kept.
    """
    names = []
    if "mean" in kinds or "median" in kinds:
        names.append("mean")
    if "optimality_gap" in kinds:
        names.append("capped")
    if "iqm" in kinds:
        names += ["kept", "zones"]
    if len(names) == 3:
        names.append("padding")
    return tuple(names)


def _weights(task: int, v: NDArray[np.float64], layout: tuple[str, ...], trim: _Trim | None) -> NDArray[np.float64]:
    """Weight of each of a task's runs in every linear statistic: (runs_t, fields)."""
    below = np.zeros(v.size, dtype=bool) if trim is None else trim.below[task]
    kept = np.zeros(v.size, dtype=bool) if trim is None else trim.kept[task]
    columns = {
        "mean": v / v.size,
        "capped": np.minimum(v, GAMMA) / v.size,
        "kept": np.where(kept, v, 0.0),
        "zones": below + _ZONE_SCALE * kept,
        "padding": np.zeros(v.size),
    }
    return np.stack([columns[name] for name in layout], axis=1)


def _band_tables(trim: _Trim, task: int, plan: _Plan) -> dict[int, NDArray[np.int32]]:
    """A task's draws at each of its band positions (in band order) for every composition of a
    group: group size -> (positions, compositions); empty for a task without band positions."""
    start, stop = trim.spans[task]
    if start == stop:
        return {}
    runs = trim.run[np.flatnonzero(trim.task == task)]  # (positions,) the run at each of them
    return {group: np.ascontiguousarray(book.comps[:, runs].T, dtype=np.int32) for group, book in plan.books.items()}


def pays_off(matrix: NDArray[np.float64], kinds: Sequence[Kind]) -> bool:
    """Whether counting is expected to be faster than resampling the scores of a checked matrix.

    matrix: (runs, tasks), NaN = missing run. True when no task needs more than MAX_GROUPS groups
    of draws and the matrix has fewer than MAX_CELLS available scores.
    """
    run_counts = np.count_nonzero(~np.isnan(matrix), axis=0).tolist()  # per task
    fields = len(_layout(kinds))
    groups = max(len(_group_sizes(runs, run_counts.count(runs), fields)) for runs in set(run_counts))
    return groups <= MAX_GROUPS and sum(run_counts) < MAX_CELLS


def _group_sizes(runs: int, tasks: int, fields: int) -> list[int]:
    """How the `runs` draws of a task are grouped: as many as possible per group within CODE_LIMIT,
    COMPOSITION_LIMIT and, for `tasks` tables of `fields` statistics, TABLE_BYTES."""
    size = 1
    while (
        size < runs
        and runs ** (size + 1) <= CODE_LIMIT
        and comb(runs + size, size + 1) <= COMPOSITION_LIMIT
        and tasks * comb(runs + size, size + 1) * fields * 8 <= TABLE_BYTES
    ):
        size += 1
    return [size] * (runs // size) + ([runs % size] if runs % size else [])


def _plans(run_counts: list[int], fields: int) -> dict[int, _Plan]:
    """A coding plan per distinct run count (see `_group_sizes`), groups packed into words."""
    plans = {}
    for runs in sorted(set(run_counts)):
        sizes = _group_sizes(runs, run_counts.count(runs), fields)
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


def _chunk_reps(tasks: int, words: int, groups: int, band: int, chunk_bytes: int) -> int:
    """Repetitions per chunk of about `chunk_bytes`: per repetition 8 bytes per random word of
    every task, 8 per task (task means), 16 per group of a word for a block of tasks (codes,
    composition ids) and 8 per IQM band position (counts and running counts, as int32)."""
    return max(1, chunk_bytes // (8 * tasks * words + 8 * tasks + 16 * BLOCK_TASKS * groups + 8 * band + 64))


def _draw(plan: _Plan, tasks: int, rng: np.random.Generator, size: int) -> list[NDArray[np.int64]]:
    """The random integers of one chunk for the `tasks` tasks of a plan: per word, (tasks, size)."""
    return [rng.integers(0, plan.runs ** sum(groups), size=(tasks, size), dtype=np.int64) for groups in plan.words]


def _codes(plan: _Plan, groups: tuple[int, ...], word: NDArray[np.int64]) -> list[tuple[int, NDArray[np.int64]]]:
    """Split a word into the codes of its groups: (group size, codes shaped like the word) per group."""
    out = []
    for group in groups[:-1]:  # code = word % runs**group and word //= runs**group, without modulo
        rest = word // plan.runs**group
        out.append((group, word - rest * plan.runs**group))
        word = rest
    out.append((groups[-1], word))
    return out


def _evaluate(
    model: _Model, words: dict[int, list[NDArray[np.int64]]]
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.int32] | None]:
    """Evaluate one chunk of resamples from its words (run count -> per word, (tasks, size)).

    Returns the linear statistics summed over tasks (size, fields), the task means (tasks,
    size) for the median, and the IQM band counts (band positions, size) for the IQM, task by
    task (`_Trim.spans`).
    """
    size = next(iter(words.values()))[0].shape[1]
    fields = len(model.layout)
    spans = [] if model.trim is None else model.trim.spans
    sums = np.zeros((size, fields))
    means = np.empty((len(model.values), size)) if "median" in model.kinds else None
    band = None if model.trim is None else np.empty((model.trim.task.size, size), dtype=np.int32)
    # buffers reused by every task: fresh ones cost page faults
    total, part = np.empty((size, fields)), np.empty((size, fields))
    band_part = np.empty((max((stop - start for start, stop in spans), default=0), size), dtype=np.int32)
    for runs, plan in model.plans.items():
        tasks = [task for task, v in enumerate(model.values) if v.size == runs]
        for start in range(0, len(tasks), BLOCK_TASKS):
            block = tasks[start : start + BLOCK_TASKS]
            ids = [  # per group of the tasks' draws: (group size, (block tasks, size) composition ids)
                (group, plan.books[group].code_to_comp.take(codes, mode="clip"))
                for groups, word in zip(plan.words, words[runs], strict=True)
                for group, codes in _codes(plan, groups, word[start : start + len(block)])
            ]
            for row, task in enumerate(block):
                _sum_over_groups(model.tables[task], ids, row, 0, total, part)
                np.add(sums, total, out=sums)
                if means is not None:
                    means[task] = total[:, 0]
                if band is not None and model.band_tables[task]:
                    counts = band[slice(*spans[task])]  # (the task's band positions, size)
                    _sum_over_groups(model.band_tables[task], ids, row, 1, counts, band_part[: len(counts)])
    return sums, means, band


def _sum_over_groups(
    tables: Mapping[int, NDArray[Any]],
    ids: list[tuple[int, NDArray[np.intp]]],
    row: int,
    axis: int,
    out: NDArray[Any],
    scratch: NDArray[Any],
) -> None:
    """Write into `out` the sum over a task's groups of draws of its table's rows (axis 0) or
    columns (axis 1) at the group's composition ids.

    tables: group size -> the task's table; ids: per group, (group size, (block tasks, size)
    composition ids), the task's at `row`. scratch: shaped like out; both have the tables'
    dtype. The ids are valid by construction: mode 'clip' spares the bounds checks and the
    buffered copy of mode 'raise'.
    """
    for index, (group, drawn) in enumerate(ids):  # the first group writes, later ones add
        tables[group].take(drawn[row], axis=axis, out=scratch if index else out, mode="clip")
        if index:
            np.add(out, scratch, out=out)


def _median(means: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over tasks of each resample's task means: (tasks, size) -> (size,).

    MEDIAN_BLOCK resamples at a time, through a buffer that stays in the CPU cache, partitioned
    at the upper middle task: the lower middle (with an even number of tasks) is then the
    largest value before it.
    """
    tasks, size = means.shape
    middle = tasks // 2
    result = np.empty(size)
    buffer = np.empty((min(MEDIAN_BLOCK, size), tasks))
    for start in range(0, size, MEDIAN_BLOCK):
        block = buffer[: min(MEDIAN_BLOCK, size - start)]  # (block, tasks)
        block[...] = means[:, start : start + MEDIAN_BLOCK].T
        block.partition(middle, axis=1)
        lower = block[:, middle] if tasks % 2 else block[:, :middle].max(axis=1)
        np.add(lower, block[:, middle], out=result[start : start + len(block)])
    result /= 2.0
    return result


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
    merged = lower[1] >= upper[0]
    if merged:
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
        merged=merged,
        below=[p < positions[0] for p in per_task],
        kept=[(p >= kept_zone[0]) & (p < kept_zone[1]) for p in per_task],
        spans=list(zip(np.append(0, stops[:-1]).tolist(), stops.tolist(), strict=True)),
        row=np.argsort(np.argsort(task, kind="stable")),
    )


def _trimmed_means(
    trim: _Trim, kept_sum: NDArray[np.float64], zones: NDArray[np.float64], band: NDArray[np.int32]
) -> NDArray[np.float64]:
    """IQM of each resample of a chunk, (size,), NaN where a cut falls outside its band.

    kept_sum, zones: (size,) the always-kept scores' sum and the packed zone counts; band:
    (band positions, size) draws at each band position, task by task (`trim.row`). Counts stay
    below MAX_CELLS, so int32 holds them exactly (and moves half the bytes of floats).
    """
    kept = np.floor(zones / _ZONE_SCALE)
    below = zones - kept * _ZONE_SCALE  # (size,) draws at positions below the first band
    # running[w]: draws at or below band position w (its draws have ranks [running - count, running))
    running = np.empty_like(band)
    np.add(band[trim.row[0]], below.astype(np.int32), out=running[0])
    for index, row in enumerate(trim.row[1:].tolist(), start=1):
        np.add(running[index - 1], band[row], out=running[index])
        if index == trim.upper:  # the always-kept zone lies between the bands
            running[index] += kept.astype(np.int32)
    valid = (below <= trim.low) & (running[-1] >= trim.high)
    lower_end = running[trim.upper - 1].copy()  # (size,) draws up to the end of the lower band
    # Kept band scores: sum_w score_w (clip(running_w) - previous), clip to [low, high], summed by
    # parts. On a valid resample the value before the first position is `low` and the value before
    # the upper band is lower_end + kept (the always-kept draws lie in between).
    step = trim.score - np.append(trim.score[1:], 0.0)  # (band positions,) score_w - score_(w+1)
    capped = np.clip(running, trim.low, trim.high, out=running)
    # numpy's own loop rather than a BLAS product: multi-threaded BLAS stalls on a busy machine
    band_sum = np.einsum("w,ws->s", step, capped) - trim.score[0] * trim.low
    if not trim.merged:
        valid &= (lower_end >= trim.low) & (lower_end + kept <= trim.high)
        step_back = trim.score[trim.upper - 1] - step[trim.upper - 1]  # undo the step across the gap
        band_sum += step_back * np.clip(lower_end, trim.low, trim.high) - trim.score[trim.upper] * (lower_end + kept)
    result: NDArray[np.float64] = (kept_sum + band_sum) / (trim.high - trim.low)
    result[~valid] = np.nan
    return result


def _samples(
    values: list[NDArray[np.float64]],
    plans: dict[int, _Plan],
    words: dict[int, list[NDArray[np.int64]]],
    reps: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Some resamples of a chunk as scores, rebuilt from its words: (len(reps), runs, tasks), NaN padded."""
    out = np.full((reps.size, max(v.size for v in values), len(values)), np.nan)
    for runs, plan in plans.items():
        tasks = [task for task, v in enumerate(values) if v.size == runs]
        drawn = [  # per draw, (tasks of this run count, len(reps)) drawn run indices
            digit
            for groups, word in zip(plan.words, words[runs], strict=True)
            for group, codes in _codes(plan, groups, word[:, reps])
            for digit in _digits(codes, runs, group)
        ]
        scores = np.stack([values[task] for task in tasks])  # (tasks of this run count, runs)
        rows = np.arange(len(tasks))[:, None]
        out[:, :runs, tasks] = np.stack([scores[rows, draw] for draw in drawn]).transpose(2, 0, 1)
    return out
