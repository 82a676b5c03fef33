"""`harness install`: source handling and recorded file fixes, on small folders (no pip run here;
tests/test_humanoidbench.py and tests/test_shadowhand.py run the real installs)."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.commands.install import register
from harness.envs.filepatch import FilePatch
from harness.errors import HarnessError, InputError
from harness.install import INSTALLERS, _apply, _fetch, install

KETTLE = '<mujocoinclude>\n    <default class="kettle">\n        <geom/>\n    </default>\n</mujocoinclude>\n'


def test_unknown_name_lists_the_valid_ones() -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command, so that `install` stays a subcommand
    result = CliRunner().invoke(app, ["install", "nope"])
    assert isinstance(result.exception, HarnessError) and result.exception.exit_code == 2
    assert "valid names: humanoidbench, shadowhand" in str(result.exception)


def test_default_sources_are_the_pinned_upstream_archives() -> None:
    assert INSTALLERS["humanoidbench"].default_source == (
        "https://github.com/carlosferrazza/humanoid-bench/archive/791405f5eacf879adbc99105adb3fee73f5a49fc.tar.gz")
    assert INSTALLERS["shadowhand"].default_source.endswith("eec512f4e060da63f8a114b91898c554a60ed66b.tar.gz")


def test_source_folder_or_archive_url(tmp_path: Path) -> None:
    folder = tmp_path / "repo-abc"
    (folder / "humanoid_bench").mkdir(parents=True)
    assert _fetch(str(folder), tmp_path) == folder
    archive = tmp_path / "abc.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="repo-abc")
    work = tmp_path / "work"
    work.mkdir()
    unpacked = _fetch(archive.as_uri(), work)  # a file:// URL takes the same path as https://
    assert unpacked.name == "repo-abc" and (unpacked / "humanoid_bench").is_dir()
    with pytest.raises(InputError, match="no such folder"):
        _fetch(str(tmp_path / "absent"), tmp_path)
    with pytest.raises(InputError, match=r"ending in \.tar\.gz"):
        _fetch((tmp_path / "repo-abc").as_uri(), work)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(InputError, match="not a readable archive"):
        _fetch(broken.as_uri(), work)
    with pytest.raises(InputError, match="no humanoid_bench folder"):
        install("humanoidbench", str(tmp_path / "work"), log=lambda _: None)


def test_file_fix_is_recorded_with_hashes(tmp_path: Path) -> None:
    path = tmp_path / "assets" / "kettle.xml"
    path.parent.mkdir()
    path.write_text(KETTLE)
    patch = FilePatch("assets/*.xml", "wraps the class", '    <default class="kettle">\n',
                      '    <default>\n    <default class="kettle">\n')
    (applied,) = _apply((patch,), tmp_path)
    assert applied.path == "assets/kettle.xml"
    assert applied.sha256_before == hashlib.sha256(KETTLE.encode()).hexdigest()
    assert applied.sha256_after == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_text().count("<default>") == 1
    path.write_text(KETTLE.replace("kettle", "pot"))  # a source other than the one the fix was made for
    with pytest.raises(InputError, match="occurs 0 times"):
        _apply((patch,), tmp_path)
    with pytest.raises(InputError, match="not in the source"):
        _apply((FilePatch("missing.xml", "", "a", "b"),), tmp_path)
