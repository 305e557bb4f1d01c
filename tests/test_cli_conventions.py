"""What users of other evaluation harnesses expect of the command line: ``--version``,
``python -m mulligan``, ``--log-level``, shell completion, every default and choice in
``--help``, and messages that name flags and commands that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from typer.testing import CliRunner

import mulligan
from mulligan import cli
from mulligan.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}  # no wrapped help lines


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_version() -> None:
    code, output = _run("--version")
    assert code == 0 and output.strip() == f"mulligan {mulligan.__version__}"


def test_python_dash_m_mulligan() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "mulligan", "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and done.stdout.strip() == f"mulligan {mulligan.__version__}"


def test_log_level_is_a_checked_choice() -> None:
    assert _run("--log-level", "info", "feedback", "list")[0] == 0
    code, output = _run("--log-level", "loud", "feedback", "list")
    assert code == 2 and "loud" in output


def test_shell_completion_is_offered() -> None:
    code, output = _run("--help", env=WIDE)
    assert code == 0 and "--install-completion" in output and "--show-completion" in output


def _run_help() -> str:
    code, output = _run("run", "--help", env=WIDE)
    assert code == 0, output
    return " ".join(output.replace("│", " ").split())


def test_run_help_shows_each_default_from_the_config() -> None:
    text = _run_help()
    for option, default in (
        ("--suite", "humaneval"),
        ("--model", "local/qwen2.5-coder-0.5b"),
        ("--turns", "5"),
        ("--proposals", "2"),
        ("--feedback", "none"),
        ("--cache", "auto"),
    ):
        assert re.search(rf"{option} .*?\[default: {re.escape(default)}\]", text), option
    # --out has no fixed default: each run gets a fresh directory, and the help says so.
    assert re.search(r"--out .*?default: a new runs/<time>", text)


def test_every_run_option_has_its_default_in_its_help() -> None:
    from mulligan.config import OPTIONS, RunConfig

    _run_help()
    command = typer.main.get_command(app)
    run = command.commands["run"]  # type: ignore[attr-defined]
    options = [p for p in run.params if p.name in OPTIONS]
    assert len(options) > 25
    cli._show_run_defaults(options)  # as a help page leaves them
    defaults = RunConfig().options()
    for param in options:
        shown = cli._shown_default(param, defaults[param.name])
        assert param.help.endswith(f"[default: {shown}]"), param.name


@pytest.mark.parametrize(
    ("option", "section", "field"),
    [
        ("sample", "selection", "sample"),
        ("checkers", "selection", "checkers"),
        ("cache", "execution", "cache"),
        ("isolation", "execution", "isolation"),
        ("wikipedia", "tools", "wikipedia"),
        ("stop", "episode", "stop"),
        ("executor", "execution", "executor"),
    ],
)
def test_run_choices_are_the_configs_and_are_checked(option: str, section: str, field: str) -> None:
    from mulligan.config import RunConfig
    from mulligan.flags import flag_type

    model: Any = RunConfig.model_fields[section].annotation
    expected = get_args(model.model_fields[field].annotation)
    assert get_args(flag_type(option)) == expected  # the flag parses the config's own Literal
    code, output = _run("run", f"--{option}", "bogus", "--model", "scripted/reference")
    assert code == 2 and "bogus" in output and "Traceback" not in output
    assert "|".join(expected) in _run_help()


def test_report_format_is_a_checked_choice(tmp_path: Path) -> None:
    code, output = _run("report", str(tmp_path), "--format", "xml")
    assert code == 2 and "xml" in output and "Traceback" not in output


def _sources() -> list[Path]:
    return [
        *sorted((REPO / "src").rglob("*.py")),
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
    ]


def test_messages_name_flags_and_packages_that_exist() -> None:
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        assert "--source" not in text, f"{path}: the flag is --from"
        assert "pip install 'mulligan[" not in text, f"{path}: use pip install -e '.[...]'"


def test_data_pull_says_the_default_only_of_the_default(mint_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    code, output = _run("data", "pull", "mint", "--from", str(mint_dir), "--data-dir", str(dest))
    text = " ".join(output.split())
    assert code == 0 and "default" not in text and f"--data-dir {dest}" in text, output
    code, output = _run(
        "data", "pull", "mint", "--from", str(mint_dir), env={"MULLIGAN_DATA_DIR": str(dest)}
    )
    assert code == 0 and "by default" in " ".join(output.split()), output
