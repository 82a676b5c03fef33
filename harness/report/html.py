"""The report's HTML page: one jinja2 template, autoescaped, figures embedded as SVG data URIs.

The page loads nothing at view time: the CSS is inline, each figure is an ``<img>`` whose source is
its SVG as base64 data, and the only URLs are relative links to the files written beside it and
plain links (``<a>``) to the http(s) addresses a submitter gave in its metadata (paper, url, ...).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from harness.figures import AGGREGATE_TITLES
from harness.report.build import AGGREGATE_NAMES, Report
from harness.scores import is_web_link

TEMPLATE = "report.html.j2"
"""The template, package data under ``harness/templates/``."""


@dataclass(frozen=True)
class FigureImage:
    """A figure as the page shows it."""

    name: str
    caption: str
    svg: bytes
    png_path: str
    """Relative path of the PNG file beside the page."""
    svg_path: str
    """Relative path of the SVG file beside the page."""

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def number(value: float | None) -> str:
    """A score as the page shows it: three decimals ('–' for none)."""
    return "–" if value is None else f"{value:.3f}"


def steps(value: float | None) -> str:
    """An environment step with thousands separators: '1,000,000' ('–' for none)."""
    return "–" if value is None else f"{int(value):,}"


def render(report: Report, images: Sequence[FigureImage], files: Sequence[str]) -> str:
    """The page: report data, figures in page order, and the relative names of the data files."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(number=number, steps=steps)
    environment.tests["link"] = is_web_link
    return environment.get_template(TEMPLATE).render(
        report=report, images=images, files=files, aggregate_names=AGGREGATE_NAMES,
        aggregate_titles=AGGREGATE_TITLES,
    )
