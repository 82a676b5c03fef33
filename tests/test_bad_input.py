"""Bad input through the CLI: every case exits 2 with the file, the key and what was expected, no
traceback, fast (nothing is trained); user text with rich markup prints as it is."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import manifest, store
from harness.cli import app
from harness.textfile import MAX_YAML_NODES

GOOD = """\
name: t
description: a test
tasks: [dmc/cartpole-balance]
agents:
  sac: {warmup_steps: 1000, hidden_dims: [32, 32]}
  random: {}
seeds: 2
budget: 4000
eval: {every: 2000, episodes: 1}
"""

# Ten anchors, each a list of ten aliases of the one before: 10**9 values once expanded.
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# (case, file content, words the error must contain: the key and what was expected)
CASES: list[tuple[str, str | bytes, list[str]]] = [
    # wrong types
    ("seeds is a bool", edit("seeds: 2", "seeds: true"), ["seeds", "valid integer", "True"]),
    ("budget is text", edit("budget: 4000", "budget: lots"), ["budget", "valid integer", "'lots'"]),
    ("budget is a float", edit("budget: 4000", "budget: 4000.5"), ["budget", "valid integer"]),
    ("budget 1e29 (YAML text)", edit("budget: 4000", "budget: 1e29"), ["budget", "valid integer", "'1e29'"]),
    ("eval episodes a bool", edit("episodes: 1", "episodes: yes"), ["eval.episodes", "valid integer"]),
    ("batch size a bool", edit("hidden_dims: [32, 32]}", "batch_size: true}"),
     ["agents.sac.batch_size", "expected int"]),
    ("batch size text", edit("hidden_dims: [32, 32]}", "batch_size: '64'}"),
     ["agents.sac.batch_size", "expected int", "'64'"]),
    ("hidden dims a mapping", edit("[32, 32]", "{a: 1}"), ["agents.sac.hidden_dims", "expected tuple"]),
    ("agent entry a list", edit("random: {}", "random: [1, 2]"), ["agents.random", "valid dictionary"]),
    ("manifest is a list", "- a\n- b\n", ["expected a mapping of keys", "list"]),
    ("description a mapping", edit("description: a test", "description: {a: 1}"), ["description", "string"]),
    # negative, zero and out-of-range numbers
    ("hidden dims negative and zero", edit("[32, 32]", "[-1, 0]"),
     ["agents.sac.hidden_dims.0", "positive integer", "-1"]),
    ("negative budget", edit("budget: 4000", "budget: -5"), ["budget", "greater than 0"]),
    ("zero seeds", edit("seeds: 2", "seeds: 0"), ["seeds", "greater than 0"]),
    ("negative seed in list", edit("seeds: 2", "seeds: [0, -1]"), ["seeds.1", "greater than or equal to 0"]),
    ("negative warmup", edit("random: {}", "random: {warmup_steps: -1}"), ["agents.random.warmup_steps", ">= 0"]),
    ("gamma above 1", edit("[32, 32]}", "[32, 32], gamma: 1.5}"), ["agents.sac.gamma", "from 0 to 1", "1.5"]),
    ("negative learning rate", edit("[32, 32]}", "[32, 32], actor_lr: -0.1}"), ["agents.sac.actor_lr", ">= 0"]),
    ("learning rate nan", edit("[32, 32]}", "[32, 32], critic_lr: .nan}"), ["agents.sac.critic_lr", "nan"]),
    ("zero temperature", edit("[32, 32]}", "[32, 32], init_temperature: 0.0}"),
     ["agents.sac.init_temperature", "> 0"]),
    # huge numbers
    ("budget past int64", edit("budget: 4000", "budget: 100000000000000000000000000000"),
     ["budget", "less than or equal to 10000000000"]),
    ("a hundred million seeds", edit("seeds: 2", "seeds: 100000000"), ["seeds", "less than or equal to 1000"]),
    ("seed past int32", edit("seeds: 2", "seeds: [4294967296]"), ["seeds.0", "less than or equal to 2147483647"]),
    ("huge batch size", edit("[32, 32]}", "[32, 32], batch_size: 99999999999}"),
     ["agents.sac.batch_size", "at most 2,147,483,647"]),
    ("eval episodes huge", edit("episodes: 1", "episodes: 100000000"), ["eval.episodes", "10000"]),
    ("too many runs", edit("seeds: 2", "seeds: 1000").replace(
        "tasks: [dmc/cartpole-balance]", "tasks: [{group: dmc-hard}, {group: tdmpc2-dmc}]")
        .replace("  random: {}\n", "".join(f"  r{i}: {{algo: random}}\n" for i in range(10))),
     ["tasks x agents x seeds", "at most 100,000"]),
    # duplicate keys, at any level
    ("duplicate top-level key", GOOD + "seeds: 3\n", ["seeds", "duplicate key at line 10", "line 7"]),
    ("duplicate agent", edit("  random: {}\n", "  random: {}\n  sac: {}\n"), ["agents.sac", "duplicate key"]),
    ("duplicate config key", edit("[32, 32]}", "[32, 32], hidden_dims: [8]}"),
     ["agents.sac.hidden_dims", "duplicate key"]),
    ("duplicate eval key", edit("episodes: 1}", "episodes: 1, every: 1000}"), ["eval.every", "duplicate key"]),
    # encodings
    ("UTF-16 with a byte-order mark", GOOD.encode("utf-16"), ["UTF-16", "expected UTF-8"]),
    ("UTF-16 without a byte-order mark", GOOD.encode("utf-16-le"), ["line 1", "NUL byte", "expected UTF-8"]),
    ("Latin-1", (GOOD + "# café\n").encode("latin-1"), ["line 10", "byte 0xe9", "expected UTF-8"]),
    ("binary", bytes(range(256)) * 4, ["NUL byte"]),
    ("not YAML", GOOD + "  - : [\n", ["not valid YAML", "line"]),
    # anchors and aliases
    ("billion laughs", GOOD + LAUGHS, ["expands to more than", f"{MAX_YAML_NODES:,}"]),
    ("alias cycle", edit("seeds: 2", "seeds: &s [*s]"), ["seeds.0", "refers to a node that contains it"]),
    ("nested too deeply", GOOD + "x: " + "[" * 40 + "]" * 40 + "\n", ["nested more than 32 levels"]),
    ("nested past the parser", GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    # huge files and strings
    ("a 50 MB string", GOOD + "description2: " + "x" * (50 << 20) + "\n", ["larger than 1 MiB"]),
    ("a long description", edit("description: a test", "description: " + "y" * 20_000),
     ["description", "at most 10000 characters", "..."]),
    ("a long agent label", edit("random: {}", "'" + "r" * 300 + "': {algo: random}"),
     ["agents", "at most 200 characters"]),
]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output  # stdout and stderr together


@pytest.mark.parametrize(("case", "content", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_manifest_exits_2_naming_file_and_key(tmp_path: Path, case: str, content: str | bytes,
                                                  words: list[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    started = time.monotonic()
    code, out = cli("run", str(path), "--dry-run", "--results", str(tmp_path / "results"))
    assert time.monotonic() - started < 10, f"{case}: took {time.monotonic() - started:.1f} s"
    assert code == 2, f"{case}: exit {code}: {out}"
    assert "Traceback" not in out
    assert str(path) in out, f"{case}: the file is not named: {out}"
    for word in words:
        assert word in out, f"{case}: {word!r} not in {out!r}"
    assert len(out) < 2000, f"{case}: {len(out)} characters of error"  # never the whole input echoed
    assert not (tmp_path / "results").exists(), f"{case}: something was written"


def test_manifest_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "suite.yaml"
    folder.mkdir()
    code, out = cli("run", str(folder), "--dry-run")
    assert code == 2 and "Traceback" not in out
    assert f"{folder}: is a folder; expected a manifest file" in out


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(codecs.BOM_UTF8 + GOOD.encode())
    assert manifest.load(path).manifest.seeds == 2


def test_bad_override_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD)
    code, out = cli("run", str(path), "--dry-run", "agents.sac.hidden_dims=[4, -4]")
    assert code == 2 and "agents.sac.hidden_dims.1: expected a positive integer" in out
    code, out = cli("run", str(path), "--dry-run", "seeds=true")
    assert code == 2 and "seeds" in out and "valid integer" in out
    # Six levels of ten aliases each: 10**6 values once expanded, refused before they are built.
    levels = ["&l0 [x, x, x, x, x, x, x, x, x, x]"] + [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 6)]
    code, out = cli("run", str(path), "--dry-run", f"tasks=[{', '.join(levels)}]")
    assert code == 2 and "Traceback" not in out and "tasks" in out and len(out) < 2000


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    """YAML merge keys (``<<: *base``) may be overridden by the mapping's own keys: not a duplicate."""
    path = tmp_path / "m.yaml"
    path.write_text(GOOD.replace("agents:\n  sac: {warmup_steps: 1000, hidden_dims: [32, 32]}\n",
                                 "base: &base {hidden_dims: [32, 32]}\nagents:\n  sac: {<<: *base, hidden_dims: [8]}\n")
                    .replace("base: &base", "x-base: &base"))
    code, out = cli("run", str(path), "--dry-run")
    assert code == 2 and "x-base" in out and "Extra inputs" in out  # the unknown key, not a duplicate
    assert "duplicate" not in out


def test_gate_config_is_read_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("level: 0.9\nlevel: 0.8\n")
    code, out = cli("gate", "--config", str(path), "--candidate", "a", "--baseline", "b",
                    "--results", str(tmp_path))
    assert code == 2 and "Traceback" not in out
    assert str(path) in out and "level: duplicate key at line 2" in out


# ----------------------------------------------------------------------------------------------
# User text with rich markup prints as it is

MARKUP = "[/x]sac[red]"


def test_markup_in_labels_and_description_prints_as_text(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD.replace("description: a test", "description: 'see [/x] and [bold]'")
                    .replace("  random: {}\n", f"  '{MARKUP}': {{algo: random}}\n"))
    code, out = cli("run", str(path), "--dry-run", "--results", str(tmp_path / "results"))
    assert code == 0, out
    assert "see [/x] and [bold]" in out and f"agent {MARKUP} = random" in out


def test_markup_in_the_store_prints_as_text(tmp_path: Path) -> None:
    """Labels, tasks and errors from the store, in `status`, `status --by-task` and `report`."""
    results = tmp_path / "results"
    st = store.Store(results / "harness.duckdb")
    with st.transaction() as con:
        for seed in range(2):
            for label, status in (("[/x]", "finished"), ("[bold]b", "finished"), ("[/y]c", "failed")):
                run_id = f"{label}-{seed}"
                store.upsert_run(con, {"run_id": run_id, "source": "harness", "label": label, "agent": "random",
                                       "suite": "[/s]", "task": "dmc/cartpole-balance", "seed": seed,
                                       "status": status, "error": "ValueError: bad [/z] value" if status == "failed"
                                       else None})
                con.execute("INSERT INTO curves (run_id, metric, step, value) VALUES (?, 'eval/return', 1000, ?)",
                            [run_id, 100.0 + seed])
    code, out = cli("status", "--results", str(results))
    assert code == 0, out
    assert "[/x]" in out and "[bold]b" in out and "[/s]" in out
    assert "failed [/y]c dmc/cartpole-balance seed 0: ValueError: bad [/z]" in out
    code, out = cli("status", "--by-task", "--results", str(results))
    assert code == 0 and "[/x]" in out
    code, out = cli("report", "--results", str(results), "--tasks", "dmc/cartpole-balance", "--reps", "50",
                    "--out", str(tmp_path / "report"))
    assert code == 0, out
    assert "[/x]" in out and "[bold]b" in out


# ----------------------------------------------------------------------------------------------
# Submissions: a rejected submission is a finding (exit 1), each problem with its file, line and column

SUBMISSIONS = [
    ("step past int64", "task,seed,step,value\ndmc/cartpole-balance,0,1000,5\ndmc/cartpole-balance,0,1e40,6\n",
     ["line 3, column step", "0 or more (at most 1e+12)"]),
    ("value with markup", "task,seed,step,value\ndmc/cartpole-balance,0,1000,[/x]\n",
     ["line 2, column value: '[/x]'", "a finite number"]),
    ("UTF-16 file", "task,seed,step,value\ndmc/cartpole-balance,0,1000,5\n".encode("utf-16"),
     ["binary content", "expected a text CSV file"]),
]


@pytest.mark.parametrize(("case", "content", "words"), SUBMISSIONS, ids=[c[0] for c in SUBMISSIONS])
def test_bad_submission_names_file_line_and_column(tmp_path: Path, case: str, content: str | bytes,
                                                   words: list[str]) -> None:
    path = tmp_path / "curves.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out = cli("submit", str(path), "--format", "long", "--agent", "[/x]paper", "--results",
                    str(tmp_path / "results"))
    assert code == 1 and "Traceback" not in out, f"{case}: exit {code}: {out}"
    assert "curves.csv" in out and "nothing was stored" in out
    for word in words:
        assert word in out, f"{case}: {word!r} not in {out!r}"
