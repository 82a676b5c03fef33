"""A recorded text fix to files of an installed package (applied by :mod:`harness.install`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FilePatch:
    """A text replacement in the files of an installed package that match a pattern."""

    path: str
    """Path (or glob pattern, e.g. ``assets/hand/manipulate_*.xml``) inside the installed package."""
    fixes: str
    """What fails without it, and under which versions."""
    old: str
    """The exact upstream text (must occur once in every matching file)."""
    new: str
    """Its replacement."""
