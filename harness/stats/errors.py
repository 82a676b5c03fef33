"""The error raised for input the statistics functions cannot use safely."""

from __future__ import annotations

from harness.errors import InputError


class StatsInputError(InputError, ValueError):
    """Input that would give a wrong or meaningless number: bad shape, NaN/inf, too few runs.

    The message names the argument, says what is wrong and, where there is one, the fix. An
    `InputError`, so the CLI reports it with exit code 2, and a `ValueError` for library callers.
    """
