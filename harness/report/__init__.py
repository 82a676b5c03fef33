"""``harness report``: statistics of selected runs as a self-contained HTML page, figures, JSON and CSV.

:func:`build` computes every number into a frozen :class:`Report`; :func:`write` renders it into a
folder (``index.html``, ``report.json``, CSV tables, figures as PNG and SVG).
"""

from harness.report.build import Report, ReportOptions, build
from harness.report.write import ReportFiles, write

__all__ = ["Report", "ReportFiles", "ReportOptions", "build", "write"]
