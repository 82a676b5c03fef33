"""Every fix HumanoidBench needs to run beside the harness's simulators, in one place.

HumanoidBench (github.com/carlosferrazza/humanoid-bench, commit ``791405f``, package version 0.2)
pins mujoco 3.1.6, dm_control 1.0.20, gymnasium 0.29.1 and torch 2.3.1. The harness installs it
with ``pip install --no-deps`` next to mujoco 3.17.0, dm-control 1.0.50 and gymnasium 1.x
(``harness install humanoidbench``), which needs the fixes below. Nothing here edits files by
hand: the import fixes act in the importing process only, and the one file fix is applied by the
installer to the installed copy, recorded in its install record, and undone by reinstalling.

Import fixes (:func:`prepare_import`, called by the adapter before ``import humanoid_bench``):

1. ``humanoid_bench.mjx.flax_to_torch`` imports torch and jax at import time, and
   ``humanoid_bench.wrappers`` and the push, reach and package tasks import it, so ``import
   humanoid_bench`` needs torch. Only the hierarchical reach policies (``policy_type`` other than
   flat) use its ``TorchModel`` and ``TorchPolicy``; the flat tasks never call them. The fix puts a
   stand-in module under that name whose two classes raise a clear error if anything builds them.
2. ``humanoid_bench.dmc_deps.dmc_index`` is a copy of dm_control's named-index table from the
   mujoco 3.1 era; under mujoco 3.17 it fails when an env is built (``MjModel`` has no
   ``flex_evpair``). The installed ``dm_control.mujoco.index`` (dm-control 1.0.50, made for
   mujoco 3.17) has the same functions and is used under that name instead.

File fix (:data:`FILE_PATCHES`, applied by :mod:`harness.install` after installing):

3. ``assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml`` opens with a top-level
   ``<default class="kettle">``; mujoco 3.17 rejects it when the file is included ("top-level
   default class 'main' cannot be renamed"; mujoco 3.1.6, upstream's pin, accepted it), so
   ``h1hand-kitchen-v0`` fails to load. The fix wraps that class in a plain
   ``<default>`` element: the same defaults, one level down.

Reset fixes (:func:`after_make` and :func:`reset`, called by the adapter), for ``reset(seed)`` to
give the same episode every time (upstream 791405f; none of them changes a task's dynamics or reward):

4. The high-bar tasks set the initial-state noise (``randomness``) to 0 inside their own reset,
   after the env has already drawn that noise for the first episode: the first episode of every
   env starts perturbed and every later one does not. :func:`after_make` sets it to 0 from the
   start, which is what the tasks ask for.
5. ``h1hand-spoon``'s target moves along a circle indexed by a step counter that is never reset, so
   each episode starts where the previous one stopped. :func:`reset` sets it to 0 at every reset.
6. ``package`` moves its destination (``model.body_pos``) at reset after the last forward pass, so
   the first observation shows the previous episode's destination. :func:`reset` runs a forward
   pass and reads the observation again.

Two behaviours are handled by the adapter (:mod:`harness.envs.humanoidbench`), not patched:
rendering (the adapter makes envs with ``render_mode=None``, so no OpenGL context is created and
``MUJOCO_GL=disable`` works), and the 15 task resets that draw from numpy's global generator (the
adapter gives each env its own global-generator state).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from typing import Any, NoReturn

import mujoco

from harness.envs.filepatch import FilePatch

UPSTREAM_REPOSITORY = "https://github.com/carlosferrazza/humanoid-bench"
UPSTREAM_COMMIT = "791405f5eacf879adbc99105adb3fee73f5a49fc"
"""The commit the installer pins and these fixes were written for (2025-05-19, package version 0.2)."""


FILE_PATCHES: tuple[FilePatch, ...] = (
    FilePatch(
        path="assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml",
        fixes="h1hand-kitchen-v0 fails to load under mujoco 3.17: an included file may not rename the "
              "top-level default class (upstream 791405f; written for mujoco 3.1.6)",
        old='    <default class="kettle">\n',
        new='    <default>\n    <default class="kettle">\n',
    ),
    FilePatch(
        path="assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml",
        fixes="closes the plain <default> opened by the previous patch",
        old="        </default>\n    </default>\n</mujocoinclude>",
        new="        </default>\n    </default>\n    </default>\n</mujocoinclude>",
    ),
)


def after_make(env: Any) -> None:
    """Fix 4, for the unwrapped ``HumanoidEnv`` ``env`` just made."""
    if env.task.__class__.__name__ in ("HighBarSimple", "HighBarHard"):
        env.randomness = 0


def reset(env: Any, seed: int | None) -> Any:
    """``env.reset(seed=seed)`` with fixes 5 and 6; returns the first observation."""
    name = env.task.__class__.__name__
    if name == "Spoon":
        env.task.step_counter = 0
    obs, _ = env.reset(seed=seed)
    if name == "Package":
        mujoco.mj_forward(env.model, env.data)
        obs = env.task.get_obs()
    return obs


def _unavailable(*_args: object, **_kwargs: object) -> NoReturn:
    raise RuntimeError(
        "HumanoidBench's hierarchical reach policies (policy_type other than 'flat') need torch and are "
        "not supported by the harness; the flat tasks do not use them")


def _torch_stand_in() -> types.ModuleType:
    """Fix 1: a stand-in for ``humanoid_bench.mjx.flax_to_torch`` that needs neither torch nor jax."""
    module = types.ModuleType("humanoid_bench.mjx.flax_to_torch",
                              "Stand-in installed by harness.envs.humanoidbench_compat (fix 1).")
    module.TorchModel = _unavailable  # type: ignore[attr-defined]
    module.TorchPolicy = _unavailable  # type: ignore[attr-defined]
    return module


def _installed_index() -> types.ModuleType:
    """Fix 2: dm-control's own named-index module, under HumanoidBench's name for its copy."""
    from dm_control.mujoco import index

    module = types.ModuleType("humanoid_bench.dmc_deps.dmc_index",
                              "dm_control.mujoco.index, put in place by harness.envs.humanoidbench_compat (fix 2).")
    module.__dict__.update({k: v for k, v in vars(index).items() if not k.startswith("__")})
    return module


_REPLACED: dict[str, Callable[[], types.ModuleType]] = {
    "humanoid_bench.mjx.flax_to_torch": _torch_stand_in,
    "humanoid_bench.dmc_deps.dmc_index": _installed_index,
}


class _Replacements(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers the imports of :data:`_REPLACED` with our modules (their parent packages import as usual)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in _REPLACED else None

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return _REPLACED[spec.name]()

    def exec_module(self, module: types.ModuleType) -> None:
        return None


_FINDER = _Replacements()


def prepare_import() -> None:
    """Apply import fixes 1 and 2; call before ``import humanoid_bench`` (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
