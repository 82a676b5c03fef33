"""Installing simulators that are not on the package registry: ``harness install NAME [--source ...]``.

Some suites exist only as source in another project's repository (HumanoidBench, BRC's ShadowHand
tasks). Their own dependency pins cannot share an environment with ours, so each is installed the
same way, into the running Python environment:

1. take the source: a local folder, or an archive URL (``.tar.gz``/``.zip``; the default is the
   upstream repository's archive at the commit the harness pins);
2. copy the package into a temporary build folder (nothing is written to the source), add what a
   regular, non-editable install needs there, and apply the recorded file fixes of
   :mod:`harness.envs.humanoidbench_compat` (or the package's own list) to that copy;
3. write an install record (``harness_install.json`` inside the installed package: source, commit,
   every fix with the file's SHA-256 before and after) and ``pip install --no-deps`` the copy;
4. ``pip install`` the few dependencies the tasks need (registry packages that fit our pins).

Installing again replaces the package and its fixes (``--force-reinstall``); a plain
``pip install --no-deps --force-reinstall`` of the upstream source removes every fix.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.envs import humanoidbench_compat, shadowhand_compat
from harness.envs.filepatch import FilePatch
from harness.errors import InputError

RECORD_FILE = "harness_install.json"


@dataclass(frozen=True)
class Installer:
    """How to install one source-only simulator package."""

    name: str
    """What ``harness install`` calls it."""
    description: str
    repository: str
    commit: str
    """The upstream commit the harness pins (and its fixes were written for)."""
    subfolders: tuple[str, ...]
    """Where the importable package may lie inside the source; the first that exists is taken."""
    import_name: str
    """The installed package's import name."""
    stage: Callable[[Path, Path], list[str]]
    """Lays out a buildable project in the build folder from the package folder; returns build notes."""
    requirements: tuple[str, ...]
    """Registry packages the tasks need beyond the harness's own dependencies."""
    file_patches: tuple[FilePatch, ...] = ()

    @property
    def default_source(self) -> str:
        """The upstream repository's archive at the pinned commit."""
        return f"{self.repository}/archive/{self.commit}.tar.gz"


@dataclass(frozen=True)
class AppliedPatch:
    path: str
    fixes: str
    sha256_before: str
    sha256_after: str


@dataclass(frozen=True)
class InstallRecord:
    """What ``harness install`` did; stored as ``<package>/harness_install.json``."""

    package: str
    source: str
    commit: str
    """The pinned commit when installed from the default source, else what the source says (or '')."""
    installed_at: str
    build_notes: list[str]
    patches: list[AppliedPatch] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stage_humanoidbench(package: Path, build: Path) -> list[str]:
    root = package.parent
    for name in ("setup.py", "README.md", "LICENSE"):
        if (root / name).exists():
            shutil.copy2(root / name, build / name)
    shutil.copytree(package, build / "humanoid_bench", ignore=shutil.ignore_patterns("__pycache__"))
    (build / "MANIFEST.in").write_text("recursive-include humanoid_bench *\nglobal-exclude __pycache__/*\n")
    return ["upstream's setup.py installs only the Python files outside an editable checkout (it has no "
            "MANIFEST.in): added one that includes every file under humanoid_bench/ (models, meshes, textures)",
            "only humanoid_bench/ and setup.py are built: upstream's training code is not installed"]


def _stage_dex_envs(package: Path, build: Path) -> list[str]:
    shutil.copytree(package, build / "dex_envs", ignore=shutil.ignore_patterns("__pycache__"))
    licence = package.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, build / "dex_envs" / "LICENSE")
    (build / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "brc-dex-envs"\nversion = "0+{shadowhand_compat.UPSTREAM_COMMIT[:7]}"\n'
        'description = "BRC\'s ShadowHand object-rotation tasks (dex_envs), built by harness install"\n\n'
        '[tool.setuptools]\npackages = ["dex_envs"]\n\n'
        '[tool.setuptools.package-data]\ndex_envs = ["**/*"]\n')
    return ["BRC ships dex_envs/ as a folder of its training code, not a package: built as the "
            "distribution brc-dex-envs (import dex_envs) with every file under dex_envs/ (models, meshes)"]


INSTALLERS: dict[str, Installer] = {
    "humanoidbench": Installer(
        name="humanoidbench",
        description="HumanoidBench's h1, h1hand and h1strong tasks (humanoidbench/<robot>-<task>)",
        repository=humanoidbench_compat.UPSTREAM_REPOSITORY, commit=humanoidbench_compat.UPSTREAM_COMMIT,
        subfolders=("humanoid_bench",), import_name="humanoid_bench", stage=_stage_humanoidbench,
        requirements=("gymnasium>=1.0,<2", "imageio>=2.30"), file_patches=humanoidbench_compat.FILE_PATCHES,
    ),
    "shadowhand": Installer(
        name="shadowhand",
        description="BRC's ShadowHand object-rotation tasks (shadowhand/<object>-rotate)",
        repository=shadowhand_compat.UPSTREAM_REPOSITORY, commit=shadowhand_compat.UPSTREAM_COMMIT,
        subfolders=("dex_envs", "jaxrl/additional_tasks/dex_envs"), import_name="dex_envs",
        stage=_stage_dex_envs, requirements=shadowhand_compat.REQUIREMENTS,
        file_patches=shadowhand_compat.FILE_PATCHES,
    ),
}


def installer(name: str) -> Installer:
    """The installer of ``name``; :class:`InputError` lists the valid names."""
    if name not in INSTALLERS:
        raise InputError(f"nothing to install under the name {name!r}; valid names: {', '.join(sorted(INSTALLERS))}")
    return INSTALLERS[name]


def _fetch(source: str, work: Path) -> Path:
    """A local folder holding the source: ``source`` itself, or the unpacked archive it names."""
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.is_dir():
            raise InputError(f"--source {source}: no such folder (give a folder or an archive URL)")
        return path.resolve()
    if not source.endswith((".zip", ".tar.gz", ".tgz")):
        raise InputError(f"--source {source}: expected a folder or an archive URL ending in .tar.gz, .tgz or .zip")
    try:
        with urllib.request.urlopen(source, timeout=120) as response:
            data = response.read()
    except (OSError, ValueError) as exc:
        raise InputError(f"--source {source}: could not download it ({exc})") from exc
    unpacked = work / "source"
    try:
        if source.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(unpacked)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(unpacked, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"--source {source}: not a readable archive ({exc})") from exc
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked


def _apply(patches: tuple[FilePatch, ...], package: Path) -> list[AppliedPatch]:
    applied = []
    for patch in patches:
        files = sorted(package.glob(patch.path))
        if not files:
            raise InputError(f"{patch.path}: not in the source; the fixes were written for another version")
        for file in files:
            name = file.relative_to(package).as_posix()
            text = file.read_text()
            if text.count(patch.old) != 1:
                raise InputError(f"{name}: the text a fix replaces occurs {text.count(patch.old)} times (expected "
                                 "once); the source differs from the version the fixes were written for")
            before = _sha256(file)
            file.write_text(text.replace(patch.old, patch.new))
            applied.append(AppliedPatch(name, patch.fixes, before, _sha256(file)))
    return applied


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise InputError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n{tail}")


def install(name: str, source: str | None = None, python: str = sys.executable,
            log: Callable[[str], None] = print) -> InstallRecord:
    """Install package ``name`` from ``source`` (default: upstream at the pinned commit) into ``python``'s
    environment, with its fixes, and return what was done."""
    spec = installer(name)
    source = source or spec.default_source
    with tempfile.TemporaryDirectory(prefix=f"harness-install-{name}-") as tmp:
        work = Path(tmp)
        log(f"source: {source}")
        root = _fetch(source, work)
        found = [root / sub for sub in spec.subfolders if (root / sub).is_dir()]
        if not found:
            raise InputError(f"--source {source}: no {' or '.join(spec.subfolders)} folder in it; "
                             f"is this {spec.repository}?")
        build = work / "build"
        build.mkdir()
        notes = spec.stage(found[0], build)
        patches = _apply(spec.file_patches, build / spec.import_name)
        record = InstallRecord(
            package=name, source=source, commit=spec.commit if source == spec.default_source else "",
            installed_at=datetime.now(UTC).isoformat(timespec="seconds"), build_notes=notes, patches=patches,
            requirements=list(spec.requirements),
        )
        (build / spec.import_name / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
        log(f"pip install --no-deps {name} ({len(patches)} file fix(es))")
        _pip(python, "--no-deps", "--force-reinstall", str(build))
    log("pip install " + " ".join(spec.requirements))
    _pip(python, *spec.requirements)
    return record


def installed_record(name: str) -> InstallRecord | None:
    """The install record of ``name`` in this environment, or None when it was not installed by the harness."""
    import importlib
    import importlib.util

    spec = installer(name)
    importlib.invalidate_caches()  # it may have been installed since this process started
    found = importlib.util.find_spec(spec.import_name)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / RECORD_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    data["patches"] = [AppliedPatch(**p) for p in data.get("patches", [])]
    return InstallRecord(**data)
