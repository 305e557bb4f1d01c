"""A resumed run whose finished episodes' tasks changed since they ran (a task file edited, data
pulled again with other contents) is refused in one line naming them; an unchanged selection
resumes without reading any episode, and a raised --limit still resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import RunConfig, build_config
from mulligan.engine import execute_run
from mulligan.engine.task_digests import TasksChangedError
from mulligan.store import RunStore
from mulligan.tasks import Task
from mulligan.tasks.base import selection_digest, task_digests


def _task(**changes: Any) -> Task:
    base: dict[str, Any] = {
        "id": "1", "suite": "s", "category": "reasoning", "prompt": "What is 1 + 1?",
        "reference": "2", "checker": "number", "gold_solution": "2",
        "metadata": {"topic": "sums"},
    }  # fmt: skip
    return Task(**(base | changes))


def test_a_digest_covers_what_is_seen_and_judged_not_where_data_lies() -> None:
    same = _task()
    assert same.digest() == _task().digest() and len(same.digest()) == 32
    for change in (
        {"prompt": "What is 1 + 2?"},
        {"reference": "3"},
        {"checker": "exact"},
        {"gold_solution": "3"},
        {"metadata": {"topic": "sums", "checker_options": {"rel_tol": 0.1}}},
        {"tools": ("look",)},
    ):
        assert _task(**change).digest() != same.digest(), change
    moved = {"game_file": "/a/game.tw-pddl", "alfworld_data": "/a"}
    elsewhere = {"game_file": "/b/game.tw-pddl", "alfworld_data": "/b"}
    assert _task(metadata=moved).digest() == _task(metadata=elsewhere).digest()
    other = _task(id="2")
    both = selection_digest(task_digests([same, other]))
    assert both == selection_digest(task_digests([other, same]))
    assert both != selection_digest(task_digests([same, _task(id="2", prompt="?")]))


def _write(path: Path, references: dict[str, str]) -> Path:
    rows = [
        {"id": key, "prompt": f"What is {key}?", "reference": value, "checker": "number"}
        for key, value in references.items()
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _config(file: Path, out: Path, limit: int) -> RunConfig:
    return build_config(
        None,
        {"tasks": f"file:{file}", "limit": limit, "turns": 1, "model": "scripted/reference",
         "out": out},
    )  # fmt: skip


async def test_a_resume_refuses_tasks_that_changed_under_finished_episodes(
    tmp_path: Path, sandboxes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, out = tmp_path / "tasks.jsonl", tmp_path / "run"
    _write(file, {"a": "1", "b": "2", "c": "3", "d": "4"})
    first = await execute_run(_config(file, out, 2), sandboxes=sandboxes)
    assert (first.finished, first.solved) == (2, 2)
    with RunStore.open_existing(out) as store:
        stored = store.run()
        digests = {e.key.task_id: e.task_digest for e in store.episodes(with_events=False)}
    assert stored is not None and len(stored.manifest["tasks_digest"]) == 64
    assert set(digests) == {"a", "b"} and all(d and len(d) == 32 for d in digests.values())
    (suite,) = stored.manifest["suites"]

    # A task not run yet may change, and --limit may be raised over it.
    _write(file, {"a": "1", "b": "2", "c": "30", "d": "4"})
    raised = await execute_run(_config(file, out, 3), resume=True, sandboxes=sandboxes)
    assert (raised.skipped, raised.finished) == (2, 1)

    # Unchanged since: recognised from the manifest alone, no episode read.
    def unread(self: RunStore) -> Any:
        raise AssertionError("the unchanged selection was checked episode by episode")

    with monkeypatch.context() as patch:
        patch.setattr(RunStore, "finished_task_digests", unread)
        again = await execute_run(_config(file, out, 3), resume=True, sandboxes=sandboxes)
    assert (again.skipped, again.finished) == (3, 0)

    # A finished episode's task changed, another's is gone: refused, naming both.
    _write(file, {"a": "10", "c": "30", "d": "4"})
    with pytest.raises(TasksChangedError) as refused:
        await execute_run(_config(file, out, 3), resume=True, sandboxes=sandboxes)
    message = str(refused.value)
    assert f"1 changed ({suite}/a)" in message
    assert f"1 no longer among the tasks ({suite}/b)" in message
    assert "another --out" in message and "\n" not in message
    with RunStore.open_existing(out) as store:  # nothing was written
        after = store.run()
        assert store.episode_count() == 3
    assert after is not None and after.manifest["tasks_digest"] == _manifest(out)["tasks_digest"]
    assert after.manifest.get("resumed") == _manifest(out).get("resumed")


def _manifest(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "manifest.json").read_text()))


async def test_episodes_stored_before_task_digests_are_let_through(
    tmp_path: Path, sandboxes: Any
) -> None:
    file, out = tmp_path / "tasks.jsonl", tmp_path / "run"
    _write(file, {"a": "1", "b": "2"})
    await execute_run(_config(file, out, 2), sandboxes=sandboxes)
    with RunStore(out) as store:  # as an older mulligan left it: no digests anywhere
        run = store.run()
        assert run is not None
        store.update_manifest(
            run.run_id, {k: v for k, v in run.manifest.items() if k != "tasks_digest"}
        )
        for episode in list(store.episodes()):
            store.save_episode(episode.model_copy(update={"task_digest": None}))
    _write(file, {"a": "10", "b": "2"})
    outcome = await execute_run(_config(file, out, 2), resume=True, sandboxes=sandboxes)
    assert outcome.skipped == 2  # nothing to compare them with
    assert len(_manifest(out)["tasks_digest"]) == 64  # from now on it is checked


def test_the_cli_refusal_is_one_error_line(tmp_path: Path) -> None:
    file, out = tmp_path / "tasks.jsonl", tmp_path / "run"
    _write(file, {"a": "1"})
    args = ["run", "--tasks", f"file:{file}", "--model", "scripted/reference", "--turns", "1"]
    args += ["--out", str(out), "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    _write(file, {"a": "2"})
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 2, result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert "cannot resume" in line and "changed" in line and "--out" in result.output
