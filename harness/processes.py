"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1
"""prctl option (linux/prctl.h): the signal this process gets when its parent dies."""


def die_with_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies, even by ``kill -9``:
    an orphaned worker would go on training (and writing) a job that the next ``harness run``
    resumes. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
