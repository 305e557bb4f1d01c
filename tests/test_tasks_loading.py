"""Suite loaders: counts, fields, MINT's prompt conventions, selection, and clear data errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mulligan.tasks import (
    DEFAULT_DATA_DIR,
    MINT_SUITES,
    STRICT_CHECKERS,
    TaskDataError,
    default_data_dir,
    get_checker,
    load_suite,
    load_tasks,
    suite_names,
)

COUNTS = {
    "gsm8k": 48,
    "math": 100,
    "theoremqa": 49,
    "mmlu": 76,
    "hotpotqa": 43,
    "humaneval": 45,
    "mbpp": 91,
}


def test_public_names() -> None:
    assert MINT_SUITES == ("gsm8k", "math", "theoremqa", "mmlu", "hotpotqa", "humaneval", "mbpp")
    assert Path.home() / ".cache" / "mulligan" / "data" == DEFAULT_DATA_DIR
    names = suite_names()
    assert "mint" in names and "humaneval" in names and "mint/humaneval" in names


def test_default_data_dir_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULLIGAN_DATA_DIR", raising=False)
    assert default_data_dir() == DEFAULT_DATA_DIR
    monkeypatch.setenv("MULLIGAN_DATA_DIR", "/somewhere/else")
    assert default_data_dir() == Path("/somewhere/else")


# --- the shared MINT data ---------------------------------------------------------------------


@pytest.mark.parametrize("suite", MINT_SUITES)
def test_mint_suites_load_completely(suite: str, mint_dir: Path) -> None:
    tasks = load_suite(f"mint/{suite}", mint_dir)
    assert len(tasks) == COUNTS[suite]
    assert len({t.id for t in tasks}) == len(tasks)
    code = suite in ("humaneval", "mbpp")
    for task in tasks:
        assert task.suite == suite
        assert task.category == ("code_generation" if code else "reasoning")
        assert task.checker == suite
        assert task.gold_solution and task.prompt and task.reference
        assert task.metadata["benchmark"] == "mint"
        assert task.tools == ()  # no tool is listed that the sandbox does not define
        get_checker(task.checker)


def test_mint_is_the_seven_suites_in_order(mint_dir: Path) -> None:
    tasks = load_suite("mint", mint_dir)
    assert len(tasks) == sum(COUNTS.values()) == 452
    assert list(dict.fromkeys(t.suite for t in tasks)) == list(MINT_SUITES)


def test_prompts_follow_mint(mint_dir: Path) -> None:
    first = {s: load_suite(f"mint/{s}", mint_dir)[0] for s in MINT_SUITES}
    assert first["theoremqa"].prompt.startswith(
        "Answer the following question with a number, a list of numbers or True or False. Let a"
    )
    assert first["humaneval"].prompt.startswith("Complete the following code:\n\nfrom typing")
    assert first["mbpp"].prompt.startswith("Write a function to find sequences")
    assert '"""' not in first["mbpp"].prompt
    assert first["gsm8k"].prompt == first["gsm8k"].prompt.strip()
    assert first["mmlu"].prompt.endswith("D ) 54,320")
    assert first["mmlu"].metadata["options"] == {"a": "6", "b": "121", "c": "18107", "d": "54,320"}


def test_task_fields_by_suite(mint_dir: Path) -> None:
    theorem = load_suite("mint/theoremqa", mint_dir)[0]
    assert theorem.metadata["answer_type"] == "list of integer"
    assert theorem.metadata["reference_value"] == [0, 5]
    assert theorem.reference == theorem.gold_solution == "[0, 5]"
    humaneval = load_suite("mint/humaneval", mint_dir)[0]
    assert humaneval.metadata["entry_point"] == "has_close_elements"
    assert humaneval.metadata["task_id"] == "HumanEval/0"
    assert humaneval.reference.rstrip().endswith("check(has_close_elements)")
    assert humaneval.gold_solution.startswith("from typing import List")
    mbpp = load_suite("mint/mbpp", mint_dir)[0]
    assert mbpp.gold_solution.startswith("import re")
    assert mbpp.metadata["test_list"][0].startswith("assert text_lowercase_underscore")
    assert mbpp.reference == "\n".join(mbpp.metadata["test_list"])


def test_strict_mode_swaps_the_checkers(mint_dir: Path) -> None:
    for suite in MINT_SUITES:
        task = load_suite(f"mint/{suite}", mint_dir, checkers="strict")[0]
        assert task.checker == STRICT_CHECKERS[suite]
        get_checker(task.checker)


def test_load_tasks_subsets_and_limits(mint_dir: Path) -> None:
    tasks = load_tasks("mint", ["gsm8k", "math"], mint_dir, limit=3)
    assert [(t.suite, t.id) for t in tasks] == [
        ("gsm8k", "0"), ("gsm8k", "1"), ("gsm8k", "2"), ("math", "0"), ("math", "1"), ("math", "2"),
    ]  # fmt: skip
    assert len(load_tasks("mint", None, mint_dir, limit=2)) == 14
    assert len(load_tasks("mint", None, mint_dir)) == 452
    assert load_tasks("mint", ["gsm8k"], mint_dir, limit=0) == []


def test_random_sample_is_seeded(mint_dir: Path) -> None:
    def ids(seed: int) -> list[str]:
        tasks = load_tasks("mint", ["math"], mint_dir, limit=5, seed=seed, sample="random")
        return [t.id for t in tasks]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert ids(1) == sorted(ids(1), key=int)  # data order kept


def test_random_samples_nest_and_do_not_depend_on_other_suites(mint_dir: Path) -> None:
    def ids(suites: list[str], limit: int) -> set[tuple[str, str]]:
        tasks = load_tasks("mint", suites, mint_dir, limit=limit, seed=0, sample="random")
        return {(t.suite, t.id) for t in tasks}

    alone = ids(["mbpp"], 4)
    with_others = ids(["gsm8k", "math", "mbpp"], 4)
    assert {k for k in with_others if k[0] == "mbpp"} == alone
    assert len(with_others) == 12
    # Growing the limit keeps the earlier sample: an extended run keeps its finished tasks.
    assert ids(["mbpp"], 2) < alone < ids(["mbpp"], 9)


def test_load_tasks_rejects_unknown_names(mint_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown task.*of group 'mint'"):
        load_tasks("mint", ["gsm8k", "alfworld"], mint_dir)
    with pytest.raises(ValueError, match="unknown task"):
        load_suite("nope", mint_dir)
    with pytest.raises(ValueError, match="limit"):
        load_tasks("mint", None, mint_dir, limit=-1)


# --- HumanEval from the package ---------------------------------------------------------------


def test_humaneval_package_suite() -> None:
    tasks = load_suite("humaneval")
    assert len(tasks) == 164
    assert tasks[0].id == "HumanEval/0" and tasks[-1].id == "HumanEval/163"
    for task in tasks:
        assert task.suite == "humaneval" and task.category == "code_generation"
        assert task.checker == "humaneval-stub"
        assert task.prompt.endswith(str(task.metadata["stub"]))
        assert task.prompt.startswith("Complete the following code:\n\n")
        entry = task.metadata["entry_point"]
        assert task.reference.rstrip().endswith(f"check({entry})")
        assert f"def {entry}" in task.gold_solution


def test_humaneval_task_selection() -> None:
    tasks = load_tasks("humaneval", ["HumanEval/3", "HumanEval/1"])
    assert [t.id for t in tasks] == ["HumanEval/1", "HumanEval/3"]
    assert len(load_tasks("humaneval", limit=10)) == 10
    with pytest.raises(ValueError, match="no sample"):
        load_tasks("humaneval", ["HumanEval/999"])


# --- data directory layouts and errors --------------------------------------------------------


@pytest.mark.parametrize(
    "layout", ["processed/{s}", "{s}", "mint/processed/{s}", "data/processed/{s}"]
)
def test_accepted_layouts(layout: str, mint_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / layout.format(s="gsm8k") / "test_prompts.json"
    target.parent.mkdir(parents=True)
    shutil.copy(mint_dir / "processed" / "gsm8k" / "test_prompts.json", target)
    assert len(load_suite("gsm8k", tmp_path)) == 48


def test_missing_data_names_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError) as info:
        load_suite("gsm8k", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "processed" / "gsm8k" / "test_prompts.json") in message
    assert "mulligan data pull mint" in message
    assert "--data-dir" in message


def test_missing_data_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULLIGAN_DATA_DIR", str(tmp_path / "env-dir"))
    with pytest.raises(TaskDataError, match="env-dir"):
        load_tasks("mint", ["math"])


def write_suite(root: Path, suite: str, lines: list[str]) -> Path:
    path = root / "processed" / suite / "test_prompts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("suite", "bad_line", "expected"),
    [
        ("gsm8k", '{"id": 1, "prompt": "q"', r"line 2: not valid JSON"),
        ("gsm8k", '{"id": 1, "prompt": "q"}', r"line 2, field 'reference'"),
        ("gsm8k", '{"id": 1, "prompt": 5, "reference": "1"}', r"line 2, field 'prompt'"),
        ("gsm8k", "[1, 2]", r"line 2: expected a JSON object"),
        (
            "theoremqa",
            '{"id": 2, "prompt": "q", "reference": 1, "answer_type": "matrix"}',
            r"line 2, field 'answer_type'",
        ),
        ("mbpp", '{"id": 2, "prompt": "q", "reference": "assert 1"}', r"line 2, field 'task_id'"),
    ],
)
def test_malformed_lines_name_file_line_and_field(
    suite: str, bad_line: str, expected: str, tmp_path: Path
) -> None:
    good = {
        "gsm8k": '{"id": 0, "prompt": "q", "reference": "1"}',
        "theoremqa": '{"id": 0, "prompt": "q", "reference": 1, "answer_type": "integer"}',
        "mbpp": json.dumps(
            {"id": 0, "prompt": "q", "reference": "assert f() == 1", "task_id": 1,
             "code": "def f():\n    return 1", "test_list": ["assert f() == 1"]}
        ),
    }[suite]  # fmt: skip
    path = write_suite(tmp_path, suite, [good, bad_line])
    with pytest.raises(TaskDataError, match=expected) as info:
        load_suite(suite, tmp_path)
    assert str(path) in str(info.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    line = '{"id": 7, "prompt": "q", "reference": "1"}'
    write_suite(tmp_path, "gsm8k", [line, line])
    with pytest.raises(TaskDataError, match="line 2, field 'id': duplicate id '7'"):
        load_suite("gsm8k", tmp_path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    write_suite(tmp_path, "gsm8k", [""])
    with pytest.raises(TaskDataError, match="no tasks"):
        load_suite("gsm8k", tmp_path)
