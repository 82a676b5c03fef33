"""The brc and dreamerv3 formats and `harness submit --list-formats`.

BRC's published arrays are read from ../shared/data/brc (skipped with a reason when absent); the
DreamerV3-style score files are small ones written here in the published layout.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from harness import catalog
from harness.submit.formats import FORMATS
from tests.test_submit import cli, query, submit

BRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brc"
needs_brc = pytest.mark.skipif(not BRC.is_dir(), reason=f"BRC's published arrays not found at {BRC} "
                                                        "(see shared/data/README.md)")


def test_list_formats_names_each_format_with_an_example():
    code, out = cli("submit", "--list-formats")
    assert code == 0, out
    for name in FORMATS:
        assert f"\n{name}\n" in f"\n{out}", name
    assert out.count("  reads: ") == len(FORMATS) and out.count("  example: harness submit ") == len(FORMATS)


# ----------------------------------------------------------------------------------------------
# brc


@needs_brc
@pytest.mark.parametrize(("benchmark", "variant"), [("dmc", "BRC_multitask"), ("dmc", "BRC_singletask"),
                                                    ("metaworld", "BRC_multitask"), ("metaworld", "BRC_singletask")])
def test_brc_folders_import_with_counts_from_the_arrays(tmp_path, benchmark, variant):
    folder = BRC / benchmark / variant
    arrays = {f.stem: np.load(f) for f in sorted(folder.glob("*.npy"))}  # name -> (seeds, evaluations)
    results = tmp_path / "r"
    code, out = submit(folder, results, "--format", "brc", "--agent", f"brc-{variant}")
    assert code == 0, out
    db = results / "harness.duckdb"
    runs = sum(a.shape[0] for a in arrays.values())
    points = sum(a.size for a in arrays.values())
    assert query(db, "SELECT count(DISTINCT task), count(*) FROM runs") == [(len(arrays), runs)]
    assert query(db, "SELECT count(*) FROM curves") == [(points,)]
    # Evaluation i at 50,000 * (i + 1): 20 evaluations end at BRC's default 1M steps.
    evaluations = next(iter(arrays.values())).shape[1]
    assert query(db, "SELECT min(step), max(step) FROM curves") == [(50_000, 50_000 * evaluations)]
    name, array = next(iter(arrays.items()))
    task = catalog.resolve(name).name
    last = query(db, f"SELECT r.seed, c.value FROM runs r JOIN curves c USING (run_id) WHERE r.task = '{task}' "
                     f"AND c.step = {50_000 * evaluations} ORDER BY r.seed")
    assert last == [(s, float(v)) for s, v in enumerate(array[:, -1])]
    expected = {"BRC_multitask": "multitask", "BRC_singletask": "single"}[variant]
    assert query(db, "SELECT DISTINCT variant FROM runs") == [(expected,)]
    (meta,) = query(db, "SELECT meta FROM submissions")
    record = json.loads(meta[0])["harness_import"]
    assert record["options"]["variant"] == expected
    assert any("BRC's train.py defaults (eval_interval=50000" in n for n in record["notes"])


@needs_brc
def test_brc_shadowhand_objects_become_rotation_tasks(tmp_path):
    """BRC names ShadowHand files after the object (`hammer.npy` is the hammer rotation, not MetaWorld's
    hammer); its `aggregate.npy` summary (seeds, evaluations, objects) is not a task and is not read."""
    folder = BRC / "shadowhand" / "BRC_multitask"
    objects = sorted(f.stem for f in folder.glob("*.npy") if f.name != "aggregate.npy")
    results = tmp_path / "r"
    code, out = submit(folder, results, "--format", "brc", "--agent", "brc-sh")
    assert code == 0, out
    tasks = [t for (t,) in query(results / "harness.duckdb", "SELECT DISTINCT task FROM runs ORDER BY task")]
    assert tasks == sorted(catalog.resolve(f"{o}-rotate").name for o in objects)
    assert "shadowhand/hammer-rotate" in tasks and len(tasks) == 85


@needs_brc
def test_brc_humanoidbench_tasks_the_catalog_knows(tmp_path):
    folder = BRC / "humanoidbench" / "BRC_multitask"
    known = sorted(f.stem for f in folder.glob("*.npy") if catalog.maybe_resolve(f.stem) is not None)
    code, out = submit(folder, tmp_path / "r", "--format", "brc", "--agent", "brc", "--skip-unknown-tasks",
                       "--dry-run")
    if known:
        assert code == 0, out
        assert f"tasks       {len(known)} " in out
    else:  # the catalog has no HumanoidBench task yet: nothing to store, and each name is listed
        assert code == 1 and "no results left to store" in out
        assert "Skipped tasks (9): h1-crawl-v0" in out


def test_brc_arrays_are_seeds_by_evaluations(tmp_path):
    folder = tmp_path / "BRC_singletask"
    folder.mkdir()
    np.save(folder / "dog-run.npy", np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]]))  # (seeds, evaluations)
    np.save(folder / "dog-walk.npy", np.zeros((2, 3, 4)))
    code, out = submit(folder, tmp_path / "r", "--format", "brc", "--agent", "a")
    assert code == 1
    assert "dog-run.npy, seed row 1, evaluation 1, column value: 'nan'; expected a finite number" in out
    assert "dog-walk.npy: an array of shape (2, 3, 4); expected a non-empty 2-D array (seeds, evaluations)" in out
    np.save(folder / "dog-run.npy", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    (folder / "dog-walk.npy").unlink()
    code, out = submit(folder, tmp_path / "r", "--format", "brc", "--agent", "a", "--step-start", "10",
                       "--step-every", "10")
    assert code == 0, out
    assert "variant single: from the folder name" in out
    assert query(tmp_path / "r" / "harness.duckdb", "SELECT DISTINCT variant FROM runs") == [("single",)]
    code, out = submit(folder, tmp_path / "r2", "--format", "brc", "--agent", "a", "--variant", "multitask")
    assert code == 0, out
    assert query(tmp_path / "r2" / "harness.duckdb", "SELECT DISTINCT variant FROM runs") == [("multitask",)]
    rows = query(tmp_path / "r" / "harness.duckdb",
                 "SELECT r.seed, list(c.step ORDER BY c.step), list(c.value ORDER BY c.step) "
                 "FROM runs r JOIN curves c USING (run_id) GROUP BY r.seed ORDER BY r.seed")
    assert rows == [(0, [10, 20, 30], [1.0, 2.0, 3.0]), (1, [10, 20, 30], [4.0, 5.0, 6.0])]


# ----------------------------------------------------------------------------------------------
# dreamerv3


def scores_file(path: Path, records: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps(records).encode()))
    return path


RECORDS: list[dict[str, object]] = [
    # ddpg: 2 seeds on walker-walk, 1 on cheetah-run, each on its own grid; one Atari task.
    {"task": "walker-walk", "method": "ddpg", "seed": 0, "xs": [0.0, 5000.0, 10000.0], "ys": [1.0, 50.0, 90.0]},
    {"task": "walker-walk", "method": "ddpg", "seed": 1, "xs": [0.0, 10000.0], "ys": [2.0, 80.0]},
    {"task": "cheetah-run", "method": "ddpg", "seed": 0, "xs": [0.0, 2500.0, 5000.0, 7500.0],
     "ys": [0.0, 10.0, 20.0, 30.0]},
    {"task": "atari_pong", "method": "ddpg", "seed": 0, "xs": [0.0], "ys": [-21.0]},
    {"task": "walker-walk", "method": "sac", "seed": 0, "xs": [0.0, 10000.0], "ys": [3.0, 95.0]},
]


def test_dreamerv3_score_file_with_method_filter(tmp_path):
    path = scores_file(tmp_path / "scores" / "dmc_proprio-mixed.json.gz", RECORDS)
    code, out = submit(path, tmp_path / "r", "--format", "dreamerv3", "--agent", "ddpg-paper")
    assert code == 1
    assert "dmc_proprio-mixed.json.gz, column method: several methods (ddpg, sac)" in out
    code, out = submit(path, tmp_path / "r", "--format", "dreamerv3", "--agent", "ddpg-paper", "--method", "ddpg",
                       "--skip-unknown-tasks")
    assert code == 0, out
    assert "Skipped tasks (1): atari_pong" in out
    rows = query(tmp_path / "r" / "harness.duckdb",
                 "SELECT r.task, r.seed, list(c.step ORDER BY c.step), list(c.value ORDER BY c.step) "
                 "FROM runs r JOIN curves c USING (run_id) GROUP BY ALL ORDER BY ALL")
    assert rows == [("dmc/cheetah-run", 0, [0, 2500, 5000, 7500], [0.0, 10.0, 20.0, 30.0]),
                    ("dmc/walker-walk", 0, [0, 5000, 10000], [1.0, 50.0, 90.0]),
                    ("dmc/walker-walk", 1, [0, 10000], [2.0, 80.0])]


def test_dreamerv3_bad_records_are_each_located(tmp_path):
    records: list[dict[str, object]] = [
        {"task": "walker-walk", "method": "m", "seed": 0, "xs": [0, 1000], "ys": [1.0]},
        {"task": "walker-walk", "method": "m", "xs": [0], "ys": [1.0]},
        {"task": "walker-walk", "method": "m", "seed": 1, "xs": [0, 1000], "ys": [1.0, "x"]},
    ]
    path = scores_file(tmp_path / "s.json.gz", records)
    code, out = submit(path, tmp_path / "r", "--format", "dreamerv3", "--agent", "a")
    assert code == 1
    assert "s.json.gz, record 0, column xs, ys: xs of 2 and ys of 1 values; expected lists of the same length" in out
    assert "s.json.gz, record 1, column seed: missing" in out
    assert "s.json.gz, record 2 (walker-walk, seed 1), point 1, column ys: 'x'; expected a finite number" in out
    (tmp_path / "t.json.gz").write_bytes(b"not gzip, not json")
    code, out = submit(tmp_path / "t.json.gz", tmp_path / "r", "--format", "dreamerv3", "--agent", "a")
    assert code == 1 and "expected a JSON list of records with task, method, seed, xs and ys" in out
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--method", "m")
    assert code == 2 and "--method applies to --format dreamerv3 and humanoidbench only" in out
