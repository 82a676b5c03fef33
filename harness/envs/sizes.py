"""Observation and action sizes of catalog tasks, measured by making one env of each.

The catalog holds no sizes (they belong to the simulators), so a multi-task plan measures them
once and keeps them in ``<results>/task-sizes.json``, discarded when a simulator package changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from rich.console import Console

from harness import catalog

_PACKAGES = ("mujoco", "dm-control", "metaworld", "myosuite", "playground")


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def measured(results: Path, tasks: Sequence[catalog.Task], console: Console) -> dict[str, tuple[int, int]]:
    """``task name -> (observation size, action size)`` for ``tasks``, from the cache or by making
    an env of each task not in it (and adding it to the cache)."""
    from harness import envs

    path = results / "task-sizes.json"
    versions = _versions()
    cached: dict[str, list[int]] = {}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("versions") == versions:
            cached = saved["sizes"]
    missing = [t for t in tasks if t.name not in cached]
    if missing:
        console.print(f"  measuring the observation and action sizes of {len(missing)} task(s) ...")
        for task in missing:
            env = envs.make(task, 0)
            cached[task.name] = [env.observation_size, env.action_size]
            env.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"versions": versions, "sizes": cached}, indent=1, sort_keys=True))
    return {t.name: (cached[t.name][0], cached[t.name][1]) for t in tasks}
