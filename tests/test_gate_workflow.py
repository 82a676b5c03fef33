"""ci/: the GitHub Actions workflow is valid YAML and calls only `harness` commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer
import yaml
from typer.core import TyperArgument, TyperGroup, TyperOption

import harness.cli
from harness import gate
from harness import manifest as manifest_mod

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "ci" / "workflows" / "harness-gate.yml"
OPERATORS = {"&&", "||", ";", "|", "(", ")", "&"}
GITHUB_VARIABLES = {"GITHUB_WORKSPACE", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "RUNNER_TEMP"}


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def steps() -> list[dict[str, Any]]:
    return [step for job in workflow()["jobs"].values() for step in job["steps"]]


def harness_calls(script: str) -> list[list[str]]:
    """Every `harness ...` command line of a shell script, as its words (GitHub expressions as one word)."""
    text = re.sub(r"\$\{\{.*?\}\}", "GITHUB_EXPRESSION", script).replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word in OPERATORS:
                if command and command[0] == "harness":
                    calls.append(command[1:])
                command = []
            else:
                command.append(word)
    return calls


def cli_root() -> TyperGroup:
    """The real `harness` command tree (typer's own click objects)."""
    root = typer.main.get_command(harness.cli.app)
    assert isinstance(root, TyperGroup)
    return root


def check_call(root: TyperGroup, words: list[str]) -> None:
    """The words name a command of the CLI and use only its options, with every required one present."""
    command: Any = root
    while isinstance(command, TyperGroup) and words and not words[0].startswith("-"):
        name, words = words[0], words[1:]
        names = command.list_commands(None)  # type: ignore[arg-type]  # no context needed
        assert name in names, f"`harness {name}` is not a command; commands: {sorted(names)}"
        command = command.get_command(None, name)  # type: ignore[arg-type]
        if isinstance(command, harness.cli.FeatureCommand):
            command = command.load()
    options = {opt: param for param in command.params if isinstance(param, TyperOption)
               for opt in (*param.opts, *param.secondary_opts)}
    arguments = [param for param in command.params if isinstance(param, TyperArgument)]
    given: set[str] = set()
    positional = 0
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            assert name in options, f"`harness {command.name}` has no option {name}; options: {sorted(options)}"
            given.add(options[name].name or name)
            if not options[name].is_flag and "=" not in word:
                index += 1
        else:
            positional += 1
        index += 1
    unlimited = any(arg.nargs == -1 for arg in arguments)
    assert unlimited or positional <= len(arguments), f"`harness {command.name}`: too many arguments in {words}"
    for param in command.params:
        if isinstance(param, TyperOption) and param.required:
            assert param.name in given, f"`harness {command.name}` needs {param.opts[0]}"


def test_workflow_is_valid_yaml_with_the_documented_triggers() -> None:
    data = workflow()
    triggers = data[True] if True in data else data["on"]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert set(data["jobs"]) == {"baseline", "gate"}
    for step in steps():
        assert ("uses" in step) != ("run" in step), step


def test_every_harness_call_in_the_workflow_exists_with_its_options() -> None:
    root = cli_root()
    calls = [call for step in steps() if "run" in step for call in harness_calls(step["run"])]
    # Baseline on main, baseline from the base commit, candidate, gate.
    assert [call[0] for call in calls] == ["run", "run", "run", "gate"]
    for call in calls:
        check_call(root, call)


def test_the_check_rejects_an_unknown_option() -> None:
    root = cli_root()
    bad = harness_calls('harness run "$SUITE" --tagg main && echo done')
    assert bad == [["run", "$SUITE", "--tagg", "main"]]
    try:
        check_call(root, bad[0])
    except AssertionError as error:
        assert "has no option --tagg" in str(error)
    else:
        raise AssertionError("an unknown option passed the check")


def test_variables_of_harness_calls_are_defined_and_point_at_real_files() -> None:
    data = workflow()
    env = data["env"]
    used = {name for step in steps() if "run" in step for call in harness_calls(step["run"])
            for word in call for name in re.findall(r"\$\{?([A-Z_]+)", word)}
    assert used <= set(env) | GITHUB_VARIABLES, used - set(env) - GITHUB_VARIABLES
    plan = manifest_mod.load(ROOT / env["SUITE"])
    assert env["AGENT"] in {spec.label for spec in plan.agents}
    assert gate.load_config(ROOT / env["GATE_CONFIG"]).rules == ("iqm", "poi")
