"""The suite registry: a suite registered in one call is loadable, listed and accepted by configs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

import mulligan.cli
from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig, build_config
from mulligan.tasks import (
    SUITES,
    CheckerMode,
    SuiteDefinition,
    Task,
    TaskDataError,
    get_suite,
    load_suite,
    load_tasks,
    register_suite,
    suite_names,
)

TOY_GROUPS = ("easy", "hard")


def _toy_task(group: str, index: int, checkers: CheckerMode) -> Task:
    answer = str(index * 2)
    return Task(
        id=f"{group}-{index}",
        suite=group,
        category="reasoning",
        prompt=f"What is {index} + {index}?",
        reference=answer,
        checker="number" if checkers == "strict" else "gsm8k",
        gold_solution=answer,
    )


def _load_toy(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    if group == "hard" and data_dir is None:
        raise TaskDataError("the hard toy tasks need a data directory")
    groups = TOY_GROUPS if group is None else (group,)
    return [_toy_task(g, i, checkers) for g in groups for i in range(5)]


def _load_flat(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return [_toy_task("flat", i, checkers) for i in range(4)]


TOY = SuiteDefinition(
    name="toy",
    description="sums, in two groups",
    load=_load_toy,
    groups=TOY_GROUPS,
    data_pull="toy-data",
)
FLAT = SuiteDefinition(name="flat", description="sums without groups", load=_load_flat)


@pytest.fixture
def toy_suites() -> Iterator[None]:
    register_suite(TOY)
    register_suite(FLAT)
    try:
        yield
    finally:
        del SUITES["toy"], SUITES["flat"]


def test_the_builtin_suites_are_registered() -> None:
    assert list(SUITES) == [
        "mint",
        "humaneval",
        "alfworld",
        "gsm8k-test",
        "math500",
        "mbpp-full",
        "mbpp-sanitized",
        "humaneval+",
        "mbpp+",
        "refinebench",
        "guess",
    ]
    assert get_suite("mint").data_pull == "mint" and len(get_suite("mint").groups) == 7
    assert get_suite("alfworld").data_pull == "mint" and len(get_suite("alfworld").groups) == 6
    assert get_suite("guess").data_pull is None
    assert get_suite("humaneval").groups == () and get_suite("humaneval").data_pull is None


@pytest.mark.usefixtures("toy_suites")
def test_a_registered_suite_loads_by_every_name(tmp_path: Path) -> None:
    assert {"toy", "toy/easy", "toy/hard", "easy", "hard", "flat"} <= set(suite_names())
    assert len(load_suite("toy", tmp_path)) == 10
    assert [t.id for t in load_suite("toy/easy")] == [f"easy-{i}" for i in range(5)]
    assert load_suite("hard", tmp_path, checkers="strict")[0].checker == "number"
    with pytest.raises(ValueError, match="unknown task 'toy/medium'"):
        load_suite("toy/medium")


@pytest.mark.usefixtures("toy_suites")
def test_load_tasks_selects_groups_of_a_grouped_suite_and_ids_otherwise(tmp_path: Path) -> None:
    tasks = load_tasks("toy", ["hard", "easy"], tmp_path, limit=2)
    assert [t.id for t in tasks] == ["hard-0", "hard-1", "easy-0", "easy-1"]
    sampled = load_tasks("toy", None, tmp_path, limit=3, seed=4, sample="random")
    assert [t.suite for t in sampled] == ["easy"] * 3 + ["hard"] * 3
    assert sampled == load_tasks("toy", None, tmp_path, limit=3, seed=4, sample="random")
    with pytest.raises(ValueError, match=r"unknown task.*medium.*of group 'toy'"):
        load_tasks("toy", ["medium"], tmp_path)
    assert [t.id for t in load_tasks("flat", ["flat-3", "flat-1"])] == ["flat-1", "flat-3"]
    with pytest.raises(ValueError, match="no sample"):
        load_tasks("flat", ["easy-0"])


def test_registering_a_taken_name_needs_replace() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_suite(SuiteDefinition(name="mint", description="", load=_load_flat))
    original = SUITES["humaneval"]
    try:
        register_suite(SuiteDefinition("humaneval", "", _load_flat), replace=True)
        assert len(load_suite("humaneval")) == 4
    finally:
        SUITES["humaneval"] = original


@pytest.mark.usefixtures("toy_suites")
def test_run_config_accepts_registered_suites_only() -> None:
    assert RunConfig(suite="toy").selection.suite == "toy"
    with pytest.raises(ValidationError, match="unknown suite 'nope'; registered: mint, humaneval"):
        RunConfig(suite="nope")
    with pytest.raises(ConfigError, match=r"suite: .*unknown suite 'gsm8k'"):
        build_config(None, {"suite": "gsm8k"})  # a group is not a run's suite


def test_unknown_suites_name_the_registered_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown suite 'toy'; registered: mint, humaneval, alfworld, .*, guess \(your",
    ):
        get_suite("toy")
    with pytest.raises(ValueError, match="unknown task 'toy'; tasks and groups: mint, mint/gsm8k"):
        load_suite("toy")


@pytest.mark.usefixtures("toy_suites")
def test_mulligan_suites_lists_every_registered_suite(
    mint_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mulligan.cli, "console", Console(width=200))
    for command in ("tasks", "suites"):  # `suites`: the older name, kept
        result = CliRunner().invoke(app, [command, "--data-dir", str(mint_dir)])
        assert result.exit_code == 0, result.output
        rows = [line.split("│")[1:-1] for line in result.output.splitlines() if "│" in line]
        cells = {(r[0].strip(), r[1].strip()): r[2].strip() for r in rows}
        assert cells[("gsm8k", "mint")] == "48" and cells[("mbpp", "mint")] == "91"
        # the standalone HumanEval is `humaneval`, so MINT's subset goes by its full name
        assert cells[("humaneval", "")] == "164" and cells[("mint/humaneval", "mint")] == "45"
        assert cells[("easy", "toy")] == "5" and cells[("flat", "")] == "4"

    result = CliRunner().invoke(app, ["tasks"])  # no data dir: the hard toy tasks are missing
    assert "not pulled (mulligan data pull toy-data)" in result.output
