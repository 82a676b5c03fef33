"""The field's published result sets: a registry (``baselines.toml``) and their import.

Each set names where its files live upstream (a GitHub repository pinned to a commit, or a zip
archive in it), the SHA-256 of every file, the format and options to import it with, its licence
and citation. :func:`add_baselines` takes the files from a folder (``--from DIR``, in the upstream
layout below each part's ``local`` folder) or downloads them, checks every hash, and submits each
part through the same validation as ``harness submit``; the citation, licence and upstream
location go into the submission's metadata, so report and leaderboard pages show them.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import tomllib
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import Finding, InputError
from harness.store import Store
from harness.submit import Format, ReadOptions, StepGrid, SubmitOptions, plan_submission, store_submission
from harness.submit.formats import FORMATS
from harness.submit.ingest import NOTHING_LEFT

REGISTRY = Path(__file__).with_name("baselines.toml")
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"
_SET_KEYS = {"agent", "description", "repository", "commit", "archive", "licence", "citation", "paper", "parts"}
_PART_KEYS = {"upstream", "local", "format", "files", "step_start", "step_every", "method", "skip_unknown_tasks",
              "split_duplicate_seeds"}


@dataclass(frozen=True)
class Part:
    """One folder of a set, imported as one submission."""

    upstream: str
    """The folder upstream: in the repository, or in the archive."""
    local: str
    """The folder under ``--from DIR`` (and under the download cache)."""
    format: Format
    files: dict[str, str]
    """File name -> expected SHA-256: exactly these files are submitted."""
    grid: StepGrid | None = None
    method: str | None = None
    skip_unknown_tasks: bool = False
    split_duplicate_seeds: bool = False


@dataclass(frozen=True)
class Baseline:
    """One published result set of the registry."""

    name: str
    agent: str
    """The agent label its runs get."""
    description: str
    repository: str
    """``owner/name`` on GitHub."""
    commit: str
    """The pinned commit (40 hex digits)."""
    licence: str
    citation: str
    paper: str
    parts: tuple[Part, ...]
    archive: str | None = None
    """A zip file in the repository that holds the parts' folders (None: the files are in the repository)."""

    @property
    def url(self) -> str:
        """The repository at the pinned commit."""
        return f"https://github.com/{self.repository}/tree/{self.commit}"

    def meta(self) -> dict[str, str]:
        """What each of its submissions records as provenance."""
        return {"baseline": self.name, "paper": self.paper, "url": self.url, "commit": self.commit,
                "licence": self.licence, "citation": self.citation}


@dataclass(frozen=True)
class Added:
    """What :func:`add_baselines` did with one part."""

    baseline: str
    part: str
    """The part's ``local`` folder."""
    outcome: Literal["stored", "present", "no catalog task"]
    """Stored now, already in the store (same files), or left out: none of its tasks is in the catalog."""
    submission_id: str
    runs: int = 0
    skipped: tuple[str, ...] = field(default_factory=tuple)
    """Published task names the catalog does not know (left out)."""


def registry(path: Path = REGISTRY) -> dict[str, Baseline]:
    """Every set of the registry file, by name; :class:`InputError` names a malformed entry."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    return {name: _baseline(path, name, entry) for name, entry in data.items()}


def _baseline(path: Path, name: str, entry: Any) -> Baseline:
    where = f"{path.name}, [{name}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a table")
    unknown = sorted(set(entry) - _SET_KEYS)
    missing = sorted(_SET_KEYS - {"archive"} - set(entry))
    if unknown or missing:
        raise InputError(f"{where}: unknown keys {unknown}, missing keys {missing}; expected {sorted(_SET_KEYS)}")
    parts = []
    for i, part in enumerate(entry["parts"]):
        unknown = sorted(set(part) - _PART_KEYS)
        if unknown or not {"upstream", "local", "format", "files"} <= set(part):
            raise InputError(f"{where}, part {i}: expected upstream, local, format, files and optionally "
                             f"{sorted(_PART_KEYS - {'upstream', 'local', 'format', 'files'})}")
        if part["format"] not in FORMATS:
            raise InputError(f"{where}, part {i}: format {part['format']!r}; expected one of {', '.join(FORMATS)}")
        grid = StepGrid(part["step_start"], part["step_every"]) if "step_start" in part else None
        parts.append(Part(part["upstream"], part["local"], part["format"], dict(part["files"]), grid,
                          part.get("method"), part.get("skip_unknown_tasks", False),
                          part.get("split_duplicate_seeds", False)))
    return Baseline(name, entry["agent"], entry["description"], entry["repository"], entry["commit"],
                    entry["licence"], entry["citation"], entry["paper"], tuple(parts), entry.get("archive"))


def select(names: list[str], path: Path = REGISTRY) -> list[Baseline]:
    """The named sets, in the order given; :class:`InputError` lists the valid names."""
    sets = registry(path)
    unknown = [n for n in names if n not in sets]
    if unknown:
        raise InputError(f"unknown baseline(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sets)} "
                         "(`harness baselines list`)")
    return [sets[n] for n in names]


def check_files(baseline: Baseline, root: Path) -> list[str]:
    """Every listed file of every part under ``root`` with its expected SHA-256: the problems found."""
    problems = []
    for part in baseline.parts:
        for name, expected in part.files.items():
            file = root / part.local / name
            if not file.is_file():
                problems.append(f"{file}: missing; expected the file from {baseline.repository}@{baseline.commit[:7]} "
                                f"{part.upstream}/{name}")
                continue
            found = hashlib.sha256(file.read_bytes()).hexdigest()
            if found != expected:
                problems.append(f"{file}: SHA-256 {found}; expected {expected} (the file at the pinned commit)")
    return problems


def download(baseline: Baseline, cache: Path) -> Path:
    """Download a set's files (at its pinned commit) into ``cache/<name>``, in the ``--from`` layout."""
    root = cache / baseline.name
    if not check_files(baseline, root):
        return root
    archive = None
    if baseline.archive is not None:
        archive = zipfile.ZipFile(io.BytesIO(_fetch(baseline, baseline.archive)))
    for part in baseline.parts:
        folder = root / part.local
        folder.mkdir(parents=True, exist_ok=True)
        for name in part.files:
            path = f"{part.upstream}/{name}"
            data = archive.read(path) if archive is not None else _fetch(baseline, path)
            (folder / name).write_bytes(data)
    return root


def _fetch(baseline: Baseline, path: str) -> bytes:
    url = RAW_URL.format(repository=baseline.repository, commit=baseline.commit, path=path)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
            return data
    except OSError as exc:
        raise InputError(f"could not download {url}: {exc}; download the files yourself and pass --from DIR") from exc


def add_baselines(store: Store, baselines: list[Baseline], source: Path | None, cache: Path,
                  report: Callable[[Added], None] = lambda added: None) -> list[Added]:
    """Import the sets: files from ``source`` (``--from``) or downloaded into ``cache``.

    Every file of every set is checked against its SHA-256 before anything is stored
    (:class:`Finding` lists the files that differ). Then each part is planned like ``harness
    submit`` and stored in its own transaction, and ``report`` is told: a part already in the store
    (same files) is left as it is; a part none of whose tasks the catalog knows is left out; a part
    with problems raises :class:`Finding` (the parts before it stay stored).
    """
    roots = [source if source is not None else download(baseline, cache) for baseline in baselines]
    problems = [f"{b.name}: {p}" for b, root in zip(baselines, roots, strict=True) for p in check_files(b, root)]
    if problems:
        raise Finding(f"{len(problems)} file(s) differ from the registry; nothing was stored:\n"
                      + "\n".join(f"  {p}" for p in problems))
    added: list[Added] = []
    for baseline, root in zip(baselines, roots, strict=True):
        for part in baseline.parts:
            added.append(_add_part(store, baseline, part, root))
            report(added[-1])
    return added


def _add_part(store: Store, baseline: Baseline, part: Part, root: Path) -> Added:
    options = SubmitOptions(
        read=ReadOptions(part.format, grid=part.grid, method=part.method), agent=baseline.agent,
        meta=baseline.meta(), skip_unknown_tasks=part.skip_unknown_tasks,
        split_duplicate_seeds=part.split_duplicate_seeds)
    with tempfile.TemporaryDirectory() as tmp:
        # Exactly the listed files, in a folder of the part's own name (BRC's names its variant).
        folder = Path(tmp) / part.local
        folder.mkdir(parents=True)
        for name in part.files:
            shutil.copyfile(root / part.local / name, folder / name)
        plan = plan_submission(store, folder, options)
    same = [p for p in plan.problems if p.value.startswith("the same files as submission")]
    if same:
        return Added(baseline.name, part.local, "present", plan.submission_id)
    if plan.skipped and [p.value for p in plan.problems] == [NOTHING_LEFT]:
        return Added(baseline.name, part.local, "no catalog task", plan.submission_id, 0, plan.skipped)
    if plan.problems:
        raise Finding(f"baseline {baseline.name}, {part.local}: {len(plan.problems)} problem(s); it was not "
                      "stored:\n" + "\n".join(f"  {p}" for p in plan.problems))
    submission_id = store_submission(store, plan)
    return Added(baseline.name, part.local, "stored", submission_id, len(plan.runs()), plan.skipped)
