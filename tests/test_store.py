"""The DuckDB store: schema keys, idempotent ingestion of shards, scores normalised by the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from harness import runfiles
from harness import store as store_mod
from harness.store import Store


def write_shard(run_dir: Path, run_id: str, task: str, points: list[tuple[str, int, float]],
                partial_line: str = "") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "source": "harness", "label": "sac", "agent": "sac", "task": task,
              "seed": 0, "status": "finished", "started_at": "2026-11-21 10:00:00.000000",
              "config": {"a": 1}, "packages": {"jax": "0.10.2"}}
    (run_dir / runfiles.SHARD_RUN).write_text(json.dumps(record))
    lines = "".join(json.dumps({"metric": m, "step": s, "value": v}) + "\n" for m, s, v in points)
    (run_dir / runfiles.SHARD_CURVES).write_text(lines + partial_line)


def counts(path: Path) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return store_mod.scalar(con, "SELECT count(*) FROM runs"), store_mod.scalar(con, "SELECT count(*) FROM curves")


def test_ingestion_is_idempotent_and_ignores_a_cut_line(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    write_shard(run, "r1", "dmc/cartpole-balance",
                [("eval/return", 1000, 100.0), ("eval/return", 2000, 250.0), ("agent/critic_loss", 1000, 3.5)],
                partial_line='{"metric": "eval/return", "st')
    assert store_mod.ingest_run_dirs(store, [run]) == 3
    assert store_mod.ingest_run_dirs(store, [run]) == 0  # the same shard twice changes nothing
    assert counts(store.path) == (1, 3)
    # A writer in the middle of a line finishes it: only that point is new.
    with (run / runfiles.SHARD_CURVES).open("a") as f:
        f.write('ep": 3000, "value": 400.0}\n')
    assert store_mod.ingest_run_dirs(store, [run]) == 1
    assert counts(store.path) == (1, 4)


def test_duplicate_keys_are_impossible(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    store.ensure()
    with store.transaction() as con:
        con.execute("INSERT INTO curves (run_id, metric, step, value) VALUES ('r', 'eval/return', 1, 1.0)")
    with pytest.raises(duckdb.ConstraintException), store.transaction() as con:
        con.execute("INSERT INTO curves (run_id, metric, step, value) VALUES ('r', 'eval/return', 1, 2.0)")
    with pytest.raises(duckdb.ConstraintException), store.transaction() as con:
        con.execute("INSERT INTO runs (run_id, source, label, agent, task, seed, status) "
                    "VALUES ('x', 'elsewhere', 'a', 'a', 't', 0, 'finished')")
    assert counts(store.path) == (0, 1)


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    write_shard(run, "r1", "dmc/cartpole-balance", [("eval/return", 1000, 100.0)])
    with pytest.raises(RuntimeError), store.transaction() as con:
        store_mod.upsert_run(con, json.loads((run / runfiles.SHARD_RUN).read_text()))
        raise RuntimeError("interrupted")
    assert counts(store.path) == (0, 0)


def test_scores_are_normalised_from_the_catalog(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    dmc, mw = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    write_shard(dmc, "a", "dmc/cheetah-run", [("eval/return", 1000, 250.0), ("train/episode_return", 1000, 9.0)])
    write_shard(mw, "b", "metaworld/reach", [("eval/success", 1000, 0.4), ("eval/return", 1000, 1234.0)])
    store_mod.ingest_run_dirs(store, [dmc, mw])
    with store.connect(read_only=True) as con:
        scores = store_mod.load_scores(con).set_index("run_id")
    # DMC: 250 / 1000 = 0.25. MetaWorld: the success rate as it is (its return is not the score).
    assert scores.loc["a", "score"] == pytest.approx(0.25)
    assert scores.loc["b", "score"] == pytest.approx(0.4)
    assert scores.loc["b", "raw"] == pytest.approx(0.4)
    assert len(scores) == 2


def test_read_only_connection_to_a_missing_store_is_an_input_error(tmp_path: Path) -> None:
    from harness.errors import InputError

    with pytest.raises(InputError, match="no store"), Store(tmp_path / "none.duckdb").connect(read_only=True):
        pass


V1_STORE = Path(__file__).parent / "data" / "store-v1.duckdb.gz"
"""A store written by release 0.1.0 (schema version 1, commit 641b214): `harness run` of SAC and BRC
on dmc/cartpole-balance, 2 seeds, 1,500 steps: 4 runs, 436 curve points."""


def v1_copy(tmp_path: Path) -> Path:
    import gzip

    path = tmp_path / "harness.duckdb"
    path.write_bytes(gzip.decompress(V1_STORE.read_bytes()))
    return path


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_of_the_previous_release_is_migrated_in_place(tmp_path: Path, read_only: bool) -> None:
    path = v1_copy(tmp_path)
    with duckdb.connect(str(path), read_only=True) as con:
        before = con.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
        points = con.execute("SELECT * FROM curves ORDER BY ALL").fetchall()
    assert (len(before), len(points)) == (4, 436)
    with Store(path).connect(read_only=read_only) as con:  # a reader migrates too, before it reads
        rows = con.execute("SELECT * EXCLUDE (variant, job_id) FROM runs ORDER BY run_id").fetchall()
        assert rows == before
        assert con.execute("SELECT DISTINCT variant, job_id FROM runs").fetchall() == [("single", None)]
        assert con.execute("SELECT * EXCLUDE (psi) FROM curves ORDER BY ALL").fetchall() == points
        assert con.execute("SELECT DISTINCT psi FROM curves").fetchall() == [("nominal",)]  # 3: the ψ of each point
        assert store_mod.scalar(con, "SELECT value FROM meta WHERE key = 'schema_version'") == store_mod.SCHEMA_VERSION
    with Store(path).transaction() as con:  # and takes new runs with their variant
        store_mod.upsert_run(con, {"run_id": "new", "source": "harness", "label": "sac-mt", "agent": "sac",
                                   "task": "dmc/cartpole-balance", "seed": 0, "status": "finished",
                                   "variant": "multitask", "job_id": "j1"})
    with Store(path).connect(read_only=True) as con:
        assert con.execute("SELECT variant, job_id FROM runs WHERE run_id = 'new'").fetchall() == [("multitask", "j1")]


# ----------------------------------------------------------------------------------------------
# The store holds exactly what the shards hold, also after a resume cut a shard back


def store_points(path: Path, run_id: str) -> list[tuple[str, int, float]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT metric, step, value FROM curves WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()
    return [(str(m), int(s), float(v)) for m, s, v in rows]


def shard_points(run: Path) -> list[tuple[str, int, float]]:
    frame, _ = store_mod.read_points(run)
    return sorted(zip(frame.metric, frame.step.astype(int), frame.value, strict=True))


def resumed_shard(run: Path, kept: int, points: list[tuple[str, int, float]]) -> None:
    """What a resumed job does to a shard: the lifecycle cuts it back to ``kept`` bytes (a
    checkpoint's offset) and appends the resumed attempt's points."""
    from harness.lifecycle import Shards

    shards = Shards([run])
    shards.open([kept])
    for metric, step, value in points:
        shards.write(0, metric, step, value)
    shards.close()


def test_a_resumed_shard_replaces_the_superseded_points(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    first = [("eval/return", 1000, 100.0), ("train/episode_return", 1000, 7.0)]
    write_shard(run, "r1", "dmc/cartpole-balance", first)
    checkpoint = (run / runfiles.SHARD_CURVES).stat().st_size  # a checkpoint right after the eval at 1000
    # The killed attempt went on past the checkpoint and was ingested.
    with (run / runfiles.SHARD_CURVES).open("a") as f:
        for metric, step, value in [("train/episode_return", 1500, 9.0), ("train/episode_return", 1700, 11.0)]:
            f.write(json.dumps({"metric": metric, "step": step, "value": value}) + "\n")
    assert store_mod.ingest_run_dirs(store, [run]) == 4
    # The resumed attempt ends episodes at other steps: 1500 with another value, no 1700, a new 1600.
    resumed_shard(run, checkpoint, [("train/episode_return", 1500, 8.0), ("train/episode_return", 1600, 10.0)])
    assert (run / runfiles.SHARD_SUPERSEDED).exists()
    # Only what changed is written: the two points after the checkpoint.
    assert store_mod.ingest_run_dirs(store, [run]) == 2
    assert store_points(store.path, "r1") == shard_points(run) == [
        ("eval/return", 1000, 100.0), ("train/episode_return", 1000, 7.0),
        ("train/episode_return", 1500, 8.0), ("train/episode_return", 1600, 10.0)]
    assert not (run / runfiles.SHARD_SUPERSEDED).exists()  # applied, then removed
    assert store_mod.ingest_run_dirs(store, [run]) == 0


def test_points_of_each_psi_are_kept_apart_and_their_cuts_applied(tmp_path: Path) -> None:
    """A reward-conditioned run evaluates at one step under several ψ: one key each; a resume that
    cuts a named ψ's point removes it from the store too, and scores read the nominal ψ* alone."""
    from harness.lifecycle import Shards

    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    write_shard(run, "r1", "dmc/cartpole-balance", [("eval/return", 1000, 100.0)])
    checkpoint = (run / runfiles.SHARD_CURVES).stat().st_size
    shards = Shards([run])
    shards.open([checkpoint])
    shards.write(0, "eval/return", 1000, 40.0, "left")
    shards.write(0, "eval/return", 2000, 200.0)
    shards.write(0, "eval/return", 2000, 50.0, "left")
    shards.close()
    assert store_mod.ingest_run_dirs(store, [run]) == 4  # the nominal and the "left" point at 1000 and 2000
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT psi, step, value FROM curves ORDER BY ALL").fetchall() == [
            ("left", 1000, 40.0), ("left", 2000, 50.0), ("nominal", 1000, 100.0), ("nominal", 2000, 200.0)]
        assert list(store_mod.load_scores(con).raw) == [100.0, 200.0]
        assert sorted(store_mod.load_scores(con, psi=None).psi) == ["left", "left", "nominal", "nominal"]
    cut = checkpoint + len(json.dumps({"metric": "eval/return", "step": 1000, "value": 40.0, "psi": "left"})) + 1
    resumed_shard(run, cut, [("eval/return", 2000, 210.0)])  # the resumed attempt: no ψ "left" at 2000 yet
    assert '["eval/return", 2000, "left"]' in (run / runfiles.SHARD_SUPERSEDED).read_text()
    store_mod.ingest_run_dirs(store, [run])
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT psi, step, value FROM curves ORDER BY ALL").fetchall() == [
            ("left", 1000, 40.0), ("nominal", 1000, 100.0), ("nominal", 2000, 210.0)]


def test_cuts_recorded_while_the_store_was_not_ingesting_are_all_applied(tmp_path: Path) -> None:
    """Two resumes between ingests (the store was busy, or the coordinator killed), the second cut
    below the first; then a superseded record applied twice (an ingest killed after its commit)."""
    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    write_shard(run, "r1", "dmc/cartpole-balance", [("eval/return", 1000, 1.0)])
    at_1000 = (run / runfiles.SHARD_CURVES).stat().st_size
    resumed_shard(run, at_1000, [("eval/return", 2000, 2.0), ("train/episode_return", 2500, 3.0)])
    assert store_mod.ingest_run_dirs(store, [run]) == 3
    at_2000 = at_1000 + len(json.dumps({"metric": "eval/return", "step": 2000, "value": 2.0})) + 1
    resumed_shard(run, at_2000, [("train/episode_return", 2600, 4.0), ("eval/return", 3000, 5.0)])
    resumed_shard(run, at_1000, [("eval/return", 2000, 20.0), ("train/episode_return", 2400, 6.0)])
    marker = (run / runfiles.SHARD_SUPERSEDED).read_text()
    assert len(marker.splitlines()) == 2
    store_mod.ingest_run_dirs(store, [run])
    expected = [("eval/return", 1000, 1.0), ("eval/return", 2000, 20.0), ("train/episode_return", 2400, 6.0)]
    assert store_points(store.path, "r1") == shard_points(run) == expected
    (run / runfiles.SHARD_SUPERSEDED).write_text(marker)
    store_mod.ingest_run_dirs(store, [run])
    assert store_points(store.path, "r1") == expected


def test_a_run_the_store_has_no_record_of_is_replaced_whole(tmp_path: Path) -> None:
    """A store written before the ``shards`` table (or by hand) with points the shard does not
    hold: the first ingest makes it equal to the shard."""
    store = Store(tmp_path / "harness.duckdb")
    run = tmp_path / "runs" / "r1"
    write_shard(run, "r1", "dmc/cartpole-balance", [("eval/return", 1000, 1.0), ("eval/return", 2000, 2.0)])
    with store.transaction() as con:
        con.execute("INSERT INTO curves (run_id, metric, step, value) VALUES ('r1', 'eval/return', 1000, 9.0), "
                    "('r1', 'eval/return', 1500, 9.0)")
    assert store_mod.ingest_run_dirs(store, [run]) == 2
    assert store_points(store.path, "r1") == [("eval/return", 1000, 1.0), ("eval/return", 2000, 2.0)]
