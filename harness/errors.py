"""Errors that reach the user as a clear message and an exit code, never as a traceback.

`InputError` (exit 2) is a usage or input mistake: a malformed manifest, an unknown task, a bad
option. `Finding` (exit 1) is a result the user asked us to judge: a rejected submission, a gate
that found a regression, a batch with failed runs. `StorageError` (exit 1) is a results folder that
cannot be read or written: a broken store or shard, a read-only folder, a full disk; its message
names the file and what to do. `StoreBusy` (exit 1): another process held the DuckDB store for
longer than a writer waits.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of the errors the CLI turns into a message and an exit code."""

    exit_code = 2


class InputError(HarnessError):
    """Bad usage or bad input (exit code 2)."""

    exit_code = 2


class Finding(HarnessError):
    """A finding the user asked for: a rejected submission, a regression, failed runs (exit 1)."""

    exit_code = 1


class StorageError(HarnessError):
    """A broken file in the results folder, or one that cannot be written (exit code 1)."""

    exit_code = 1


class StoreBusy(HarnessError):
    """Another process held the store for longer than the wait (exit 1); nothing was written."""

    exit_code = 1
