"""Run directories: a new readable one per run by default, --resume that may raise --limit, a
warning before writing into someone else's directory, and the exact command that resumes."""

from __future__ import annotations

import logging
import shlex
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig
from mulligan.engine import RunDir, execute_run, resume_conflicts
from mulligan.engine.rundir import default_run_dir, resume_command, with_run_dir
from mulligan.store import RunStore

runner = CliRunner()
NOON = datetime(2026, 11, 30, 3, 15, 0)


@pytest.mark.parametrize(
    ("model", "suite", "tasks", "name"),
    [
        ("local/qwen2.5-coder-0.5b", "humaneval", None, "qwen2.5-coder-0.5b-humaneval"),
        ("local//models/my model.gguf", "mint", ("gsm8k", "math"), "my-model-mint-gsm8k+math"),
        ("openai-compatible/org/Llama-3@http://h:8000/v1", "mint", None, "Llama-3-mint"),
        ("scripted/reference", "humaneval", None, "reference-humaneval"),
    ],
)
def test_the_default_run_dir_is_new_and_readable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    suite: str,
    tasks: tuple[str, ...] | None,
    name: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig(model=model, suite=suite, tasks=tasks)
    first = default_run_dir(cfg, now=NOON)
    assert first == Path("runs") / f"20261130-031500-{name}"
    first.mkdir(parents=True)
    assert default_run_dir(cfg, now=NOON) == Path("runs") / f"20261130-031500-{name}-2"
    assert with_run_dir(cfg.with_options(out="mine"), resume=False).execution.out == Path("mine")


def test_two_runs_without_out_both_run_and_say_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the default `--out runs/latest` refused the second run.
    monkeypatch.chdir(tmp_path)
    args = ["run", "--suite", "humaneval", "--limit", "1", "--model", "scripted/reference"]
    outputs = [runner.invoke(app, [*args, "--no-progress"]) for _ in range(2)]
    assert [r.exit_code for r in outputs] == [0, 0], outputs[1].output
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.endswith("reference-humaneval") or "-2" in r for r in runs)
    for result in outputs:
        assert "run directory: runs/" in result.output


async def test_resume_may_raise_the_limit_but_not_lower_it(
    tmp_path: Path, sandboxes: object
) -> None:
    for sample in ("first", "random"):
        cfg = RunConfig(
            suite="humaneval", limit=2, sample=sample, seed=3, model="scripted/reference",
            out=tmp_path / sample,
        )  # fmt: skip
        await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"limit: 2 -> 1 .*raise --limit, not lower it"):
            await execute_run(cfg.with_options(limit=1), resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]
        raised = cfg.with_options(limit=4)
        outcome = await execute_run(raised, resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]
        # The seeded sample of 2 is part of the sample of 4: 2 stored, 2 new.
        assert (outcome.skipped, outcome.finished, outcome.total) == (2, 2, 4), sample
        with RunStore.open_existing(tmp_path / sample) as store:
            stored = store.run()
            assert store.episode_count() == 4
        assert stored is not None
        assert stored.manifest["config"]["limit"] == 4
        assert [(h["from"], h["to"]) for h in stored.manifest["limit_raised"]] == [(2, 4)]


def test_resume_conflicts_on_limit() -> None:
    stored = RunConfig(limit=5).options()
    assert resume_conflicts(stored, RunConfig(limit=5)) == []
    assert resume_conflicts(stored, RunConfig(limit=9)) == []
    assert resume_conflicts(stored, RunConfig(limit=None)) == []  # every task: raised
    assert resume_conflicts(stored, RunConfig(limit=4)) != []
    assert resume_conflicts(RunConfig().options(), RunConfig(limit=4)) != []  # from every task
    # A raised limit does not excuse another change.
    assert resume_conflicts(stored, RunConfig(limit=9, turns=2)) == ["turns: 5 -> 2"]


def test_writing_into_a_directory_that_holds_other_things_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "Documents"
    home.mkdir()
    (home / "thesis.tex").write_text("...")
    with caplog.at_level(logging.WARNING, logger="mulligan.engine.rundir"):
        RunDir.open(RunConfig(out=home), resume=False).close()
    assert "Documents is not empty and holds no run" in caplog.text
    assert "thesis.tex" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mulligan.engine.rundir"):
        RunDir.open(RunConfig(out=tmp_path / "fresh"), resume=False).close()
        RunDir.open(RunConfig(out=tmp_path / "empty"), resume=False).close()
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["mulligan", "run", "--suite", "humaneval", "--limit", "3"],
            "mulligan run --suite humaneval --limit 3 --out 'runs/x y' --resume",
        ),
        (
            ["mulligan", "run", "--out=runs/a", "--feedback", "tests+llm:expert; x"],
            "mulligan run --out=runs/a --feedback 'tests+llm:expert; x' --resume",
        ),
        (["mulligan", "run", "--no-resume", "--out", "o"], "mulligan run --resume --out o"),
        (["/nowhere/bin/mulligan", "run"], "/nowhere/bin/mulligan run --out 'runs/x y' --resume"),
    ],
)
def test_the_resume_command_is_exact_and_quoted(argv: list[str], expected: str) -> None:
    command = resume_command(argv, Path("runs/x y"))
    assert command == expected
    assert shlex.split(command)[1:] == shlex.split(expected)[1:]


def test_ctrl_c_prints_the_command_that_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mulligan.engine.execute_run", interrupted)
    out = tmp_path / "my runs" / "one"
    argv = ["mulligan", "run", "--model", "scripted/reference", "--limit", "2", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    result = runner.invoke(app, argv[1:])
    assert result.exit_code == 130
    assert "Resume with:" in result.output
    assert shlex.join([*argv, "--resume"]) in result.output.replace("\n", "")
