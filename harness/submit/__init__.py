"""External results: read published per-seed curves, validate them strictly, store them with provenance.

``harness submit`` is a thin layer over :func:`plan_submission` (read and validate, no writes) and
:func:`store_submission` (one transaction). See ``docs/submitting.md`` for the formats.
"""

from __future__ import annotations

from harness.submit.formats import FORMATS, Format, LongColumns, ReadOptions, SourceFile, StepGrid
from harness.submit.ingest import (
    IMPORT_KEY,
    Plan,
    Removed,
    RunVariant,
    SubmissionDetails,
    SubmitOptions,
    list_submissions,
    plan_submission,
    remove_submission,
    store_submission,
    submission_details,
)
from harness.submit.validate import Problem

__all__ = [
    "FORMATS",
    "IMPORT_KEY",
    "Format",
    "LongColumns",
    "Plan",
    "Problem",
    "ReadOptions",
    "Removed",
    "RunVariant",
    "SourceFile",
    "StepGrid",
    "SubmissionDetails",
    "SubmitOptions",
    "list_submissions",
    "plan_submission",
    "remove_submission",
    "store_submission",
    "submission_details",
]
