"""Compiled loops of the counting bootstrap (`harness.stats.counts` prepares their arrays).

One call evaluates one chunk of repetitions. A block of repetitions is decoded (the composition
of every group of draws) and summed task by task, so that each task's tables serve the whole
block once in the CPU cache, then finished repetition by repetition. Each repetition's value comes from
the same floating-point operations in the same order whatever the block, chunk or thread, so
replicates are bit-identical for any number of threads.

Median: task means are not kept. While the tasks are summed, each repetition counts its task
means below a band [low, high] and keeps those inside it; the median is selected among the kept
ones. Any band gives the exact median (a repetition whose middle values fall outside it, or that
keeps more than `slots` of them, is recomputed from its draws); a narrow band around where the
medians fall makes that cheap (`counts` finds one from a pilot run of a few repetitions).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

IQM, MEAN, MEDIAN, GAP = 0, 1, 2, 3
"""Aggregate codes in a kernel's `kinds` array."""

SMALL = 96
"""Most values whose median is found by counting ranks rather than by partitioning."""

ZONE_SCALE = 2.0**26
"""Packs two draw counts (each below 2**26) into one exactly summable float: below + scale x kept."""


@numba.njit(nogil=True, cache=True)
def chunk_replicates(
    words: NDArray[np.int64],
    coding: NDArray[np.int64],
    task_groups: NDArray[np.int64],
    code_to_comp: NDArray[np.int32],
    table: NDArray[np.float64],
    band_table: NDArray[np.int32],
    band_offsets: NDArray[np.int64],
    task_bands: NDArray[np.int64],
    walk_rows: NDArray[np.int64],
    walk_scores: NDArray[np.float64],
    walk: NDArray[np.int64],
    cell_positions: NDArray[np.int64],
    sorted_scores: NDArray[np.float64],
    bounds: NDArray[np.float64],
    kinds: NDArray[np.int64],
    gamma: float,
    block: int,
    slots: int,
    out: NDArray[np.float64],
) -> None:
    """Write the replicates of one chunk into out: (size, kinds).

    words: (word rows, size) the chunk's random words. coding: (groups, 6) per group of draws,
    task by task: its word row, divisor (0: the word's last group, which takes the rest), offset
    of its codebook in code_to_comp, offset of its rows in the table, the task's run
    count, and the group's size. task_groups: (tasks + 1,) each task's range of groups.
    table: (rows, 4) linear statistics per composition: mean, mean capped at gamma, always-kept
    sum, packed zone counts (ZONE_SCALE). band_table: per group, each composition's draws at each
    of the task's band positions, from band_offsets (groups,); task_bands: (tasks + 1,) each
    task's range of band rows. walk_rows, walk_scores: (width,) the band row and score of each
    band position in sorted order; walk: (4,) band width, index of the upper band's first
    position, and the kept ranks [low, high). cell_positions, sorted_scores: (cells,) for the
    exact IQM of a resample whose cut falls outside a band. bounds: (2,) the median band. kinds:
    aggregate codes, in output order. block: repetitions per block; slots: most task means kept
    per repetition for the median.
    """
    size = words.shape[1]
    tasks = task_groups.size - 1
    median = iqm = False
    for kind in kinds:
        median = median or kind == MEDIAN
        iqm = iqm or kind == IQM
    rem = np.empty(block, dtype=np.int64)
    most_groups = 1
    for task in range(tasks):
        most_groups = max(most_groups, task_groups[task + 1] - task_groups[task])
    ids = np.empty((most_groups, block), dtype=np.int32)  # (a task's groups, block) composition ids
    sums = np.empty((block, 4))  # linear statistics summed over tasks
    band = np.empty((walk_rows.size, block), dtype=np.int32)  # draws at each band position
    kept = np.empty((block, slots + 1 if median else 0))  # the task means inside the median band
    inside = np.empty(block, dtype=np.int64)  # how many
    below = np.empty(block, dtype=np.int64)  # task means below the median band
    scratch = np.empty(tasks)
    result = np.empty(block)
    for start in range(0, size, block):
        n = min(block, size - start)
        sums[:n] = 0.0
        inside[:n] = 0
        below[:n] = 0
        for task in range(tasks):
            first, stop = task_groups[task], task_groups[task + 1]
            _decode(words, coding, code_to_comp, first, stop, start, n, rem, ids)
            _add_linear(table, coding, ids, first, stop, n, sums, median, bounds, kept, inside, below)
            if iqm:
                _count_band(band_table, band_offsets, task_bands, ids, first, stop, task, n, band)
        for column, kind in enumerate(kinds):
            target = out[start : start + n, column]
            if kind == MEAN:
                for r in range(n):
                    target[r] = sums[r, 0] / tasks
            elif kind == GAP:
                for r in range(n):
                    target[r] = gamma - sums[r, 1] / tasks
            elif kind == MEDIAN:
                for r in range(n):
                    value = np.nan
                    if inside[r] <= slots:
                        value = _banded_median(kept[r, : inside[r]], below[r], tasks)
                    if np.isnan(value):
                        _task_means(words[:, start + r], coding, task_groups, code_to_comp, table, scratch)
                        value = _median_at(scratch, tasks // 2, tasks % 2 == 1)
                    target[r] = value
            else:
                _trimmed_means(sums[:n, 2], sums[:n, 3], band[:, :n], walk_rows, walk_scores, walk, result[:n])
                for r in range(n):
                    target[r] = result[r]
                    if np.isnan(result[r]):
                        target[r] = _exact_trimmed_mean(words[:, start + r], coding, task_groups, cell_positions,
                                                        sorted_scores, walk)


@numba.njit(nogil=True, cache=True)
def _decode(
    words: NDArray[np.int64],
    coding: NDArray[np.int64],
    code_to_comp: NDArray[np.int32],
    first: int,
    stop: int,
    start: int,
    n: int,
    rem: NDArray[np.int64],
    ids: NDArray[np.int32],
) -> None:
    """Composition ids of a task's groups of draws [first, stop) for repetitions [start, start + n):
    ids (groups of the task, n)."""
    for k in range(first, stop):
        row, divisor, book = coding[k, 0], coding[k, 1], coding[k, 2]
        j = k - first
        if k == first or coding[k - 1, 1] == 0:  # a new word
            rem[:n] = words[row, start : start + n]
        if divisor == 0:
            for r in range(n):
                ids[j, r] = code_to_comp[book + rem[r]]
        else:  # quotient by the reciprocal (a hardware division costs several times more), then made exact
            inverse = 1.0 / divisor
            for r in range(n):
                rest = np.int64(rem[r] * inverse)
                code = rem[r] - rest * divisor
                while code < 0:
                    rest -= 1
                    code += divisor
                while code >= divisor:
                    rest += 1
                    code -= divisor
                ids[j, r] = code_to_comp[book + code]
                rem[r] = rest


@numba.njit(nogil=True, cache=True)
def _add_linear(
    table: NDArray[np.float64],
    coding: NDArray[np.int64],
    ids: NDArray[np.int32],
    first: int,
    stop: int,
    n: int,
    sums: NDArray[np.float64],
    median: bool,
    bounds: NDArray[np.float64],
    kept: NDArray[np.float64],
    inside: NDArray[np.int64],
    below: NDArray[np.int64],
) -> None:
    """Add a task's linear statistics (the sum over its groups of their table rows) to sums (n, 4).

    With `median`, also count the task's mean below the band `bounds`, or keep it in kept
    (n, slots + 1) when inside; branch-free: every mean is written, only those inside are counted.
    """
    low, high = bounds[0], bounds[1]
    last = kept.shape[1] - 1
    base = coding[first, 3]
    two = stop - first == 2  # the common case, unrolled
    second = coding[first + 1, 3] if two else 0
    for r in range(n):
        i = base + ids[0, r]
        s0, s1, s2, s3 = table[i, 0], table[i, 1], table[i, 2], table[i, 3]
        if two:
            i = second + ids[1, r]
            s0 += table[i, 0]
            s1 += table[i, 1]
            s2 += table[i, 2]
            s3 += table[i, 3]
        else:
            for k in range(first + 1, stop):
                i = coding[k, 3] + ids[k - first, r]
                s0 += table[i, 0]
                s1 += table[i, 1]
                s2 += table[i, 2]
                s3 += table[i, 3]
        sums[r, 0] += s0
        sums[r, 1] += s1
        sums[r, 2] += s2
        sums[r, 3] += s3
        if median:
            below[r] += s0 < low
            kept[r, min(inside[r], last)] = s0
            inside[r] += (s0 >= low) & (s0 <= high)


@numba.njit(nogil=True, cache=True)
def _resample_codes(words: NDArray[np.int64], coding: NDArray[np.int64]) -> NDArray[np.int64]:
    """The code of every group of draws of one resample from its words (word rows,): (groups,)."""
    codes = np.empty(coding.shape[0], dtype=np.int64)
    rest = np.int64(0)
    for k in range(coding.shape[0]):
        if k == 0 or coding[k - 1, 1] == 0:  # a new word
            rest = words[coding[k, 0]]
        divisor = coding[k, 1]
        codes[k] = rest % divisor if divisor else rest
        rest = rest // divisor if divisor else rest
    return codes


@numba.njit(nogil=True, cache=True)
def _task_means(
    words: NDArray[np.int64],
    coding: NDArray[np.int64],
    task_groups: NDArray[np.int64],
    code_to_comp: NDArray[np.int32],
    table: NDArray[np.float64],
    means: NDArray[np.float64],
) -> None:
    """Every task mean of one resample from its words (word rows,), as `_add_linear` sums them: means (tasks,)."""
    codes = _resample_codes(words, coding)
    for task in range(task_groups.size - 1):
        first, stop = task_groups[task], task_groups[task + 1]
        total = table[coding[first, 3] + code_to_comp[coding[first, 2] + codes[first]], 0]
        for k in range(first + 1, stop):
            total += table[coding[k, 3] + code_to_comp[coding[k, 2] + codes[k]], 0]
        means[task] = total


@numba.njit(nogil=True, cache=True)
def _count_band(
    band_table: NDArray[np.int32],
    offsets: NDArray[np.int64],
    task_bands: NDArray[np.int64],
    ids: NDArray[np.int32],
    first: int,
    stop: int,
    task: int,
    n: int,
    band: NDArray[np.int32],
) -> None:
    """Write a task's draws at each of its band positions into its rows of band (width, n)."""
    low, high = task_bands[task], task_bands[task + 1]
    positions = high - low
    if positions == 0:
        return
    if stop - first == 2:  # the common case, unrolled
        one, two = offsets[first], offsets[first + 1]
        for r in range(n):
            i, j = one + ids[0, r] * positions, two + ids[1, r] * positions
            for p in range(positions):
                band[low + p, r] = band_table[i + p] + band_table[j + p]
        return
    for r in range(n):
        for p in range(positions):
            count = 0
            for k in range(first, stop):
                count += band_table[offsets[k] + ids[k - first, r] * positions + p]
            band[low + p, r] = count


@numba.njit(nogil=True, cache=True)
def _banded_median(kept: NDArray[np.float64], below: int, count: int) -> float:
    """Median of `count` values from those inside a band (kept, reordered in place) and how many
    lie below it, or NaN when a middle value lies outside the band. The k-th smallest kept value
    is the (below + k)-th of all."""
    middle = count // 2 - below
    if middle < 1 - count % 2 or middle >= kept.size:
        return np.nan
    return _median_at(kept, middle, count % 2 == 1)


@numba.njit(nogil=True, cache=True)
def _median_at(values: NDArray[np.float64], middle: int, odd: bool) -> float:
    """The median from values (reordered in place) whose middle-th smallest is the upper middle
    value: with an odd count that value, else its mean with the largest value before it."""
    if values.size <= SMALL:
        return _median_by_ranks(values, middle, odd)
    _select(values, middle)
    upper = values[middle]
    if odd:
        return upper
    lower = values[0]
    for i in range(1, middle):
        lower = max(lower, values[i])
    return (lower + upper) / 2.0


@numba.njit(nogil=True, cache=True)
def _median_by_ranks(values: NDArray[np.float64], middle: int, odd: bool) -> float:
    """`_median_at` for a few values by counting each one's rank (ties ranked by index), without
    branches: cheaper than partitioning below about SMALL values."""
    upper = lower = 0.0
    for i in range(values.size):
        v = values[i]
        rank = 0
        for j in range(values.size):
            rank += (values[j] < v) | ((values[j] == v) & (j < i))
        if rank == middle:
            upper = v
        elif rank == middle - 1:
            lower = v
    return upper if odd else (lower + upper) / 2.0


@numba.njit(nogil=True, cache=True)
def _select(values: NDArray[np.float64], k: int) -> None:
    """Reorder values so that values[k] is the k-th smallest, none before it larger and none
    after it smaller (Hoare partitions around a median of three)."""
    lo, hi = 0, values.size - 1
    while lo < hi:
        a, b, c = values[lo], values[(lo + hi) // 2], values[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@numba.njit(nogil=True, cache=True)
def _trimmed_means(
    kept_sums: NDArray[np.float64],
    zones: NDArray[np.float64],
    band: NDArray[np.int32],
    rows: NDArray[np.int64],
    scores: NDArray[np.float64],
    walk: NDArray[np.int64],
    out: NDArray[np.float64],
) -> None:
    """IQM of each resample of a block (n,) from its band counts band (width, n); NaN where a
    cut falls outside a band.

    The draws at a band position hold ranks [running before, running after); the part of them
    inside the kept ranks [low, high) counts with that position's score. Positions are walked in
    sorted order for the whole block at once.
    """
    n = kept_sums.size
    width, upper = walk[0], walk[1]
    low, high = float(walk[2]), float(walk[3])  # counts as floats (exact below 2**53): the loops vectorise
    running = np.empty(n)
    previous = np.empty(n)
    always = np.empty(n)  # draws always kept
    valid = np.empty(n, dtype=np.bool_)
    for r in range(n):
        always[r] = np.floor(zones[r] / ZONE_SCALE)
        running[r] = zones[r] - always[r] * ZONE_SCALE  # draws below the first band position
        valid[r] = running[r] <= low
        previous[r] = low
        out[r] = kept_sums[r]
    for w in range(width):
        if w == upper:  # the always-kept draws lie between the bands: all their ranks must be kept
            for r in range(n):
                valid[r] = valid[r] and running[r] >= low and running[r] + always[r] <= high
                running[r] += always[r]
                previous[r] = min(max(running[r], low), high)
        counts = band[rows[w]]
        score = scores[w]
        for r in range(n):
            running[r] += counts[r]
            capped = min(max(running[r], low), high)
            out[r] += score * (capped - previous[r])
            previous[r] = capped
    for r in range(n):
        out[r] = out[r] / (high - low) if valid[r] and running[r] >= high else np.nan


@numba.njit(nogil=True, cache=True)
def _exact_trimmed_mean(
    words: NDArray[np.int64],
    coding: NDArray[np.int64],
    task_groups: NDArray[np.int64],
    cell_positions: NDArray[np.int64],
    sorted_scores: NDArray[np.float64],
    walk: NDArray[np.int64],
) -> float:
    """IQM of one resample from all of its draws (its words: (word rows,)), walking every sorted position."""
    low, high = walk[2], walk[3]
    counts = np.zeros(sorted_scores.size, dtype=np.int64)  # draws at each sorted position
    codes = _resample_codes(words, coding)
    cell = 0
    for task in range(task_groups.size - 1):
        runs = coding[task_groups[task], 4]
        for k in range(task_groups[task], task_groups[task + 1]):
            code = codes[k]
            for _ in range(coding[k, 5]):
                counts[cell_positions[cell + code % runs]] += 1
                code //= runs
        cell += runs
    running = np.int64(0)
    total = 0.0
    for position in range(counts.size):
        before = min(max(running, low), high)
        running += counts[position]
        total += sorted_scores[position] * (min(max(running, low), high) - before)
    return total / (high - low)
