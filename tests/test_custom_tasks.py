"""Your own tasks without a fork: JSONL task files, YAML suite files, Hugging Face datasets
from a local ``save_to_disk`` directory, ``--tasks file:PATH``, per-task checker options, and
one clear error naming the line and field for a malformed file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, build_config
from mulligan.tasks import get_checker, load_tasks
from mulligan.tasks.custom import TaskSourceError, load_source
from test_checkers_gold import WRONG, judge_all
from test_checkers_runner import code_runner

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_example_file_loads_every_kind_of_task() -> None:
    tasks = load_tasks(f"file:{EXAMPLES / 'suite.yaml'}")
    by_id = {t.id: t for t in tasks}
    assert {t.suite for t in tasks} == {"my-arithmetic"}
    assert by_id["pi"].metadata["checker_options"] == {"rel_tol": 0.001}
    assert by_id["capital"].checklist[1] == "Is the city Paris?"
    square, even = by_id["square"], by_id["is_even"]
    assert square.category == "code_generation" and square.metadata["test_list"]
    assert even.reference.rstrip().endswith("check(is_even)")
    assert even.metadata["entry_point"] == "is_even"
    assert by_id["add"].metadata["source"] == "examples"  # the YAML's defaults


async def test_example_gold_passes_and_wrong_fails() -> None:
    tasks = load_source(f"file:{EXAMPLES / 'tasks.jsonl'}")
    async with code_runner() as runner:
        gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
        wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert [r.correct for r in gold] == [True] * len(tasks)
    assert [r.correct for r in wrong] == [False] * len(tasks)


async def test_checker_options_travel_with_the_task(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {
                "id": "loose",
                "prompt": "pi?",
                "reference": "3.14",
                "checker": "number",
                "checker_options": {"rel_tol": 0.001},
            },
            {"id": "exact", "prompt": "pi?", "reference": "3.14", "checker": "number"},
        ],
    )
    loose, exact = load_source(f"file:{path}")
    number = get_checker("number")
    assert (await number.check("3.141", loose, None)).correct  # type: ignore[arg-type]
    assert not (await number.check("3.141", exact, None)).correct  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"prompt": "x", "reference": "1"', "line 2: not valid JSON"),
        ({"reference": "1", "checker": "number"}, "line 2, field 'prompt': Field required"),
        (
            {"prompt": "x", "reference": "1", "checker": "nosuch"},
            "field 'checker': Value error, unknown checker 'nosuch'",
        ),
        (
            {"prompt": "x", "reference": "1", "checker": "number", "checker_options": {"tol": 1}},
            "field 'checker_options': Value error, field 'tol': Extra inputs are not permitted",
        ),
        (
            {
                "prompt": "x",
                "reference": "1",
                "checker": "exact_match",
                "checker_options": {"rel_tol": 1},
            },
            "checker 'exact_match' takes no options",
        ),
        (
            {"prompt": "x", "checker": "python_tests", "category": "code_generation"},
            "field 'tests' is required",
        ),
        ({"prompt": "x", "checker": "number"}, "field 'reference' is required"),
        (
            {"prompt": "x", "reference": "1", "checker": "number", "answer": "1"},
            "field 'answer': Extra inputs are not permitted",
        ),
        ({"prompt": "x", "reference": "1", "checker": "number", "tests": []}, "empty tests"),
    ],
)
def test_a_malformed_line_is_one_error_naming_line_and_field(
    tmp_path: Path, line: Any, expected: str
) -> None:
    good = {"id": 1, "prompt": "1?", "reference": "1", "checker": "number"}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, line])
    with pytest.raises(TaskSourceError) as caught:
        load_source(f"file:{path}")
    message = str(caught.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_duplicate_ids_and_empty_files_are_refused(tmp_path: Path) -> None:
    task = {"id": "a", "prompt": "1?", "reference": "1", "checker": "number"}
    with pytest.raises(TaskSourceError, match="duplicate task id 'a'"):
        load_source(f"file:{write_jsonl(tmp_path / 'd.jsonl', [task, task])}")
    with pytest.raises(TaskSourceError, match="no tasks"):
        load_source(f"file:{write_jsonl(tmp_path / 'e.jsonl', [])}")


def test_a_bad_suite_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\ntasks: t.jsonl\ndefaults: {answer: 1}\n")
    with pytest.raises(TaskSourceError, match=r"unknown task field.s. answer"):
        load_source(f"file:{bad}")
    bad.write_text("name: x\n")
    with pytest.raises(TaskSourceError, match="exactly one of 'tasks'"):
        load_source(f"file:{bad}")


def test_tasks_file_is_what_a_run_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    config = build_config(None, {"tasks": "file:examples/tasks.jsonl"})
    assert config.selection.suite == f"file:{EXAMPLES / 'tasks.jsonl'}"  # absolute: resumable
    assert config.selection.tasks is None
    with pytest.raises(ConfigError, match="leave out --suite mint"):
        build_config(None, {"tasks": "file:examples/tasks.jsonl", "suite": "mint"})
    with pytest.raises(ConfigError, match="not found"):
        build_config(None, {"tasks": "file:examples/nosuch.jsonl"})


@pytest.mark.parametrize(
    ("model", "solved"), [("scripted/reference", 1.0), ("scripted/wrong", 0.0)]
)
def test_cli_runs_a_task_file(tmp_path: Path, model: str, solved: float) -> None:
    out = tmp_path / "run"
    args = ["run", "--tasks", f"file:{EXAMPLES / 'suite.yaml'}", "--model", model]
    result = CliRunner().invoke(app, [*args, "--turns", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(app, ["report", str(out), "--format", "json"])
    (run,) = json.loads(report.output)["runs"]
    numbers = run["summary"]["suites"]["my-arithmetic"]
    assert numbers["episodes"] == 6
    assert numbers["sr_at_k"]["1"]["value"] == solved


# --- Hugging Face datasets, offline from a save_to_disk directory ---------------------------


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    datasets = pytest.importorskip("datasets", reason="the hf extra (datasets) is not installed")
    rows = {
        "question": ["What is 2 + 3?", "What is 10 * 4?", "What is 7 - 9?"],
        "answer": ["5", "40", "-2"],
        "level": [1, 2, 1],
    }
    path = tmp_path_factory.mktemp("hf") / "arith"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(path))
    return path


def test_hf_dataset_with_a_field_mapping(saved_dataset: Path, tmp_path: Path) -> None:
    suite = tmp_path / "hf.yaml"
    suite.write_text(
        f"name: arith\nhf: {{path: '{saved_dataset}', split: test}}\n"
        "fields: {prompt: question, reference: answer}\ndefaults: {checker: number}\n"
    )
    tasks = load_tasks(f"file:{suite}")
    assert [(t.id, t.prompt, t.reference, t.checker) for t in tasks][:2] == [
        ("0", "What is 2 + 3?", "5", "number"),
        ("1", "What is 10 * 4?", "40", "number"),
    ]
    assert {t.suite for t in tasks} == {"arith"}


def test_hf_errors_name_the_row_column_or_split(saved_dataset: Path, tmp_path: Path) -> None:
    suite = tmp_path / "hf.yaml"
    suite.write_text(
        f"hf: {{path: '{saved_dataset}', split: test}}\n"
        "fields: {prompt: question, reference: answer, metadata: level}\n"
        "defaults: {checker: number}\n"
    )
    with pytest.raises(
        TaskSourceError, match=r"row 0, field 'metadata': Input should be a valid dictionary"
    ):
        load_source(f"file:{suite}")
    with pytest.raises(TaskSourceError, match="no split 'validation'; it has test"):
        load_source(f"hf:{saved_dataset}:validation")
    # without a mapping the columns must be named like the task fields
    with pytest.raises(TaskSourceError, match="row 0, field 'prompt': Field required"):
        load_source(f"hf:{saved_dataset}:test")
    with pytest.raises(TaskSourceError, match="expected hf:NAME:split"):
        load_source("hf:only-a-name")


def test_a_task_file_is_hidden_from_model_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its references and solutions must not be readable from the sandbox (weak isolation
    modes hide what this lists; bubblewrap never binds it)."""
    from mulligan.engine.components import reference_paths

    monkeypatch.chdir(REPO)
    config = build_config(None, {"tasks": "file:examples/suite.yaml"})
    assert str(EXAMPLES) in reference_paths(config)
