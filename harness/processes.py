"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1
"""prctl option (linux/prctl.h): the signal this process gets when its parent dies."""


def die_with_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies, even by ``kill -9``:
    an orphaned worker would go on training (and writing) a job that the next ``harness run``
    resumes. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def without_main() -> Iterator[None]:
    """Start spawned processes inside this block so that they do not run this process's main
    script: ``multiprocessing`` re-runs it in every spawned child (unless it is a package's
    ``__main__``), and for the ``harness`` console script that imports the whole CLI, which a
    worker never uses. The children's targets must live in importable modules (ours all do)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
