"""JAX's persistent compilation cache: a second run of the same shapes compiles nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Trains one short job through the library call a worker makes and prints what JAX's compilation
# cache saw: requests (programs that went through it), hits (loaded) and misses (compiled, written).
# The cache is set up before JAX loads, as in a worker (through the variables JAX reads when it loads).
SCRIPT = """
import collections, json, sys
from pathlib import Path
from harness import jaxcache
jaxcache.enable(Path(sys.argv[1]))
assert "jax" not in sys.modules
from jax._src import monitoring
from harness import backends, manifest
seen = collections.Counter()
monitoring.register_event_listener(lambda event, **kwargs: seen.update([event.rsplit("/", 1)[-1]]))
sac = {"hidden_dims": [8, 8], "batch_size": 8, "warmup_steps": 100}
raw = {"name": "cache", "tasks": ["dmc/cartpole-balance"], "agents": {"sac": sac}, "seeds": 1,
       "budget": 200, "eval": {"every": 200, "episodes": 1}}
backends.train(manifest.validate(raw, Path("cache.yaml")).jobs[0], Path(sys.argv[1]))
print(json.dumps({k: seen[k] for k in ("compile_requests_use_cache", "cache_hits", "cache_misses")}))
"""


def train_once(results: Path) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(results)], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "MUJOCO_GL": "disable"}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def test_a_second_run_of_the_same_shapes_loads_every_program_from_the_cache(tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = train_once(results)
    cache = results / ".jax-cache"
    assert first["compile_requests_use_cache"] > 0 and first["cache_misses"] == first["compile_requests_use_cache"]
    assert any(cache.iterdir())
    for entry in results.iterdir():  # forget the finished run, keep the cache
        if entry != cache:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    second = train_once(results)
    assert second == {"compile_requests_use_cache": first["compile_requests_use_cache"],
                      "cache_hits": first["compile_requests_use_cache"], "cache_misses": 0}


def test_the_cache_folder_follows_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import jaxcache

    monkeypatch.delenv(jaxcache.ENV, raising=False)
    assert jaxcache.folder(tmp_path) == tmp_path / ".jax-cache"
    monkeypatch.setenv(jaxcache.ENV, str(tmp_path / "elsewhere"))
    assert jaxcache.folder(tmp_path) == tmp_path / "elsewhere"
    monkeypatch.setenv(jaxcache.ENV, "off")
    assert jaxcache.folder(tmp_path) is None
