"""Write a :class:`Report` into a folder: the HTML page, its figures, the JSON and the CSV tables.

Layout of the folder (files of a previous report that this one does not produce are removed)::

    index.html                     self-contained: CSS inline, figures embedded as SVG data
    report.json                    every number the page shows, with the settings and notes
    aggregates.csv, per_task.csv, performance_profile.csv, probability_of_improvement.csv,
    sample_efficiency.csv, exclusions.csv
    psi_aggregates.csv, zero_shot.csv    with reward-conditioned runs (:mod:`harness.report.conditioned`)
    figures/<name>.png, figures/<name>.svg

Everything written is a function of the report alone, so the same report gives byte-identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from harness import figures
from harness.report.build import AGGREGATE_NAMES, REPORT_FORMAT, Band, Estimate, Report
from harness.report.html import FigureImage, render
from harness.stats import Interval, IntervalBand

FIGURES = ("interval_estimates", "performance_profile", "probability_of_improvement", "sample_efficiency")
"""Every figure a report can have, in page order (probability of improvement needs two agents)."""

TABLES = ("aggregates", "per_task", "performance_profile", "probability_of_improvement", "sample_efficiency",
          "exclusions", "psi_aggregates", "zero_shot")
"""The CSV tables, one file each (the last two only for a report with a reward-conditioned section)."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write` wrote."""

    html: Path
    json: Path
    tables: tuple[Path, ...]
    figures: tuple[Path, ...]
    """PNG and SVG of each figure."""


def write(report: Report, out: Path) -> ReportFiles:
    """Write the report's files into ``out`` (created if needed) and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    images, figure_paths = [], []
    for name, figure in _figures(report):
        png, svg = figures.save(figure, out / "figures" / name)
        figure_paths += [png, svg]
        images.append(FigureImage(name, report.captions[name], svg.read_bytes(), f"figures/{png.name}",
                                  f"figures/{svg.name}"))
    for name in set(FIGURES) - {image.name for image in images}:
        for suffix in (".png", ".svg"):
            (out / "figures" / f"{name}{suffix}").unlink(missing_ok=True)
    table_paths = []
    for name, header, rows in _tables(report):
        path = out / f"{name}.csv"
        path.write_text(_csv(header, rows), encoding="utf-8")
        table_paths.append(path)
    for name in set(TABLES) - {path.stem for path in table_paths}:
        (out / f"{name}.csv").unlink(missing_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(to_json(report), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    html_path = out / "index.html"
    html_path.write_text(render(report, images, [p.name for p in (json_path, *table_paths)]), encoding="utf-8")
    return ReportFiles(html_path, json_path, tuple(table_paths), tuple(figure_paths))


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data: every field of :class:`Report`, and the layout version."""
    return {"format": REPORT_FORMAT, **dataclasses.asdict(report)}


def _interval(estimate: Estimate, report: Report) -> Interval:
    settings = report.settings
    return Interval(estimate.point, estimate.low, estimate.high, settings.method, settings.level, settings.reps)


def _band(band: Band, report: Report) -> IntervalBand:
    settings = report.settings
    x, point, low, high = (np.asarray(v, dtype=np.float64) for v in (band.x, band.point, band.low, band.high))
    return IntervalBand(x, point, low, high, settings.method, settings.level, settings.reps)


def _figures(report: Report) -> list[tuple[str, Figure]]:
    labels = [agent.label for agent in report.agents]
    palette = figures.colors(labels)
    external = {agent.label for agent in report.agents if agent.external}
    made = [
        ("interval_estimates", figures.interval_estimates(
            {a.label: {n: _interval(a.aggregates[n], report) for n in AGGREGATE_NAMES} for a in report.agents},
            colors=palette, external=external)),
        ("performance_profile", figures.performance_profile(
            {a.label: _band(a.profile, report) for a in report.agents}, colors=palette, external=external)),
    ]
    if report.improvements:
        made.append(("probability_of_improvement", figures.probability_of_improvement(
            {(i.x, i.y): _interval(i.estimate, report) for i in report.improvements},
            colors=palette, external=external)))
    made.append(("sample_efficiency", figures.sample_efficiency(
        {a.label: _band(a.curve, report) for a in report.agents}, colors=palette, external=external)))
    return made


def _tables(report: Report) -> Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]:
    agents = report.agents
    yield ("aggregates", ("agent", "rank", "external", "aggregate", "point", "low", "high", "runs", "tasks"),
           [(a.label, a.rank, a.external, name, a.aggregates[name].point, a.aggregates[name].low,
             a.aggregates[name].high, a.runs, len(report.compared_tasks))
            for a in agents for name in AGGREGATE_NAMES])
    yield ("per_task", ("task", "suite", "normalisation", "compared", "reason", "agent", "step", "runs", "mean",
                        "low", "high"),
           [(row.task, row.suite, row.normalisation, row.compared, row.reason, cell.agent, cell.step,
             len(cell.scores), cell.mean, cell.low, cell.high) for row in report.tasks for cell in row.cells])
    yield ("performance_profile", ("agent", "tau", "point", "low", "high"),
           [(a.label, *values) for a in agents for values in _band_rows(a.profile)])
    yield ("probability_of_improvement", ("x", "y", "point", "low", "high"),
           [(i.x, i.y, i.estimate.point, i.estimate.low, i.estimate.high) for i in report.improvements])
    yield ("sample_efficiency", ("agent", "step", "iqm", "low", "high"),
           [(a.label, *values) for a in agents for values in _band_rows(a.curve)])
    yield ("exclusions", ("stage", "agent", "task", "run_id", "seed", "reason"),
           [(e.stage, e.agent, e.task, e.run_id, e.seed, e.reason) for e in report.exclusions])
    section = report.reward_conditioned
    if section is not None:
        yield ("psi_aggregates", ("agent", "psi", "tasks", "runs", "iqm", "iqm_low", "iqm_high", "mean", "mean_low",
                                  "mean_high"),
               [(a.agent, a.psi, len(a.tasks), a.runs, a.iqm.point, a.iqm.low, a.iqm.high, a.mean.point, a.mean.low,
                 a.mean.high) for a in section.aggregates])
        yield ("zero_shot", ("psi", "conditioned", "baseline", "tasks", "conditioned_iqm", "baseline_iqm",
                             "p_improvement", "p_low", "p_high"),
               [(z.psi, z.conditioned, z.baseline, len(z.tasks), z.conditioned_iqm.point, z.baseline_iqm.point,
                 z.improvement.point, z.improvement.low, z.improvement.high) for z in section.zero_shot])


def _band_rows(band: Band) -> list[tuple[float, float, float, float]]:
    return list(zip(band.x, band.point, band.low, band.high, strict=True))


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return buffer.getvalue()
