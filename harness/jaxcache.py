"""JAX's persistent compilation cache for training: a run whose programs have the shapes of an
earlier run's loads them from disk instead of compiling them again.

The cache lives in ``<results>/.jax-cache`` (or ``$HARNESS_JAX_CACHE``; ``HARNESS_JAX_CACHE=off``
turns it off). Every program is cached however small or quick to compile: on CPU most of a short
run's programs compile in well under JAX's default threshold of one second, and together they
take seconds. A cache folder JAX was already given (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
JAX reads these settings at its first compilation in a process, so :func:`enable` is called before
a job compiles anything (the executor's worker processes compile nothing else).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "HARNESS_JAX_CACHE"
FOLDER = ".jax-cache"
CACHE_DIR = "JAX_COMPILATION_CACHE_DIR"
"""The environment variable JAX reads its cache folder from when it loads."""


def folder(results: Path) -> Path | None:
    """The cache folder of a results folder: ``$HARNESS_JAX_CACHE``, else ``results/.jax-cache``;
    None when the variable is ``off``."""
    setting = os.environ.get(ENV, "")
    if setting.lower() == "off":
        return None
    return Path(setting) if setting else results / FOLDER


def enable(results: Path) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`folder` (unless JAX already has a cache
    folder) and cache every program; returns the folder in use. Before JAX is loaded this sets the
    environment variables JAX reads when it loads, so a process that never needs JAX (a job of the
    random agent on host simulators) does not load it; after, JAX's config."""
    jax = sys.modules.get("jax")
    current = os.environ.get(CACHE_DIR) if jax is None else getattr(jax.config, "jax_compilation_cache_dir")  # noqa: B009
    if current:
        return Path(current)
    path = folder(results)
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    settings = {"jax_compilation_cache_dir": str(path), "jax_persistent_cache_min_compile_time_secs": 0.0,
                "jax_persistent_cache_min_entry_size_bytes": -1}  # -1: no size threshold, no override
    for name, value in settings.items():  # JAX reads JAX_<NAME> when it loads
        if jax is None:
            os.environ[name.upper()] = str(value)
        else:
            jax.config.update(name, value)
    return path
