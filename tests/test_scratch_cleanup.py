"""Sandbox scratch directories left by killed processes: a new pool removes those whose owner is
gone and keeps a live sandbox's, and anything mulligan did not make; SIGTERM of `mulligan run`
cleans up as Ctrl-C does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mulligan.sandbox import SandboxPool, scratch
from mulligan.sandbox.scratch import OWNER_SUFFIX, create_scratch, release_scratch, remove_abandoned

SRC = Path(__file__).resolve().parents[1] / "src"


def _dead_owners_scratch(parent: Path) -> Path:
    """A scratch directory made by a process that was then killed with SIGKILL."""
    code = (
        "import sys, time\nfrom mulligan.sandbox.scratch import create_scratch\n"
        "path, owner, fd = create_scratch(sys.argv[1])\nopen(path + '/work.py', 'w').write('x')\n"
        "print(path, flush=True)\ntime.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(parent)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    path = Path(child.stdout.readline().strip())
    child.kill()  # SIGKILL: it removes nothing
    child.wait()
    assert path.is_dir() and Path(f"{path}{OWNER_SUFFIX}").is_file()
    return path


def test_a_dead_owners_scratch_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = _dead_owners_scratch(tmp_path)
    live, live_owner, live_fd = create_scratch(str(tmp_path))
    foreign = tmp_path / "mulligan-sbx-foreign"  # no owner file: not made by mulligan
    foreign.mkdir()
    # An owner file nobody holds, but a symlink where its directory would be.
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "mulligan-sbx-link").symlink_to(target)
    (tmp_path / f"mulligan-sbx-link{OWNER_SUFFIX}").write_text("")
    assert remove_abandoned([str(tmp_path)]) == [str(dead)]
    assert not dead.exists() and not Path(f"{dead}{OWNER_SUFFIX}").exists()
    assert Path(live).is_dir() and Path(live_owner).is_file()
    assert foreign.is_dir() and target.is_dir() and (tmp_path / "mulligan-sbx-link").is_symlink()
    if os.geteuid() == 0:  # an owner file that another user made is not ours to judge
        other = tmp_path / "mulligan-sbx-other"
        other.mkdir()
        owner = tmp_path / f"mulligan-sbx-other{OWNER_SUFFIX}"
        owner.write_text("")
        os.chown(owner, 12345, 12345)
        assert remove_abandoned([str(tmp_path)]) == [] and other.is_dir()
    release_scratch(live, live_owner, live_fd)
    assert not Path(live).exists() and not Path(live_owner).exists()


async def test_a_new_pool_removes_abandoned_scratch_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scratch, "scratch_parents", lambda: [str(tmp_path)])
    dead = _dead_owners_scratch(tmp_path)
    pool = SandboxPool(size=1)
    await pool.start()
    try:
        assert not dead.exists()
        async with pool.session() as sandbox:
            assert sandbox.scratch_dir is not None
            # A live sandbox's owner file is held: a second pool keeps its directory.
            other = SandboxPool(size=0)
            await other.start()
            await other.close()
            assert Path(sandbox.scratch_dir).is_dir()
    finally:
        await pool.close()


def _owner_files_of(pid: int) -> list[Path]:
    found = []
    for parent in {Path("/tmp"), Path(os.environ.get("TMPDIR", "/tmp"))}:
        for owner in parent.glob(f"mulligan-sbx-*{OWNER_SUFFIX}"):
            try:
                if f"of process {pid}\n" in owner.read_text():
                    found.append(owner)
            except OSError:
                continue
    return found


def test_sigterm_of_a_run_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    solution = "import time\ntime.sleep(8)\ndef f():\n    return 1\n"
    rows = [
        {"id": str(i), "prompt": "Write f() returning 1.", "checker": "python_tests",
         "tests": ["assert f() == 1"], "solution": solution}
        for i in range(4)
    ]  # fmt: skip
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "mulligan", "run", "--tasks", f"file:{tasks}", "--turns", "2"]
    argv += ["--model", "scripted/execute-then-answer", "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    run = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _owner_files_of(run.pid) and time.monotonic() < deadline:
            assert run.poll() is None, run.communicate()
            time.sleep(0.1)
        assert _owner_files_of(run.pid), "the run's sandboxes never started"
        time.sleep(1.5)  # episodes under way: a cell sleeps in each
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 143, stderr  # 128 + SIGTERM, as a shell reports a terminated job
    assert "terminated (SIGTERM); finished episodes are saved" in stderr and "--resume" in stderr
    assert _owner_files_of(run.pid) == []  # every scratch directory removed, with its owner


def test_scratch_still_held_at_exit_is_removed(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom mulligan.sandbox.scratch import create_scratch\n"
        "path, owner, fd = create_scratch(sys.argv[1])\nopen(path + '/work.py', 'w').write('x')\n"
        "print(path, flush=True)\n"  # exits without releasing it
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.name.startswith(scratch.PREFIX)
    assert not path.exists() and not Path(f"{path}{OWNER_SUFFIX}").exists()


async def test_a_close_cancelled_half_way_still_removes_the_scratch(tmp_path: Path) -> None:
    pool = SandboxPool(size=0)
    await pool.start()
    try:
        async with pool.session() as sandbox:
            directory = sandbox.scratch_dir
            assert directory is not None and Path(directory).is_dir()
            closing = asyncio.ensure_future(sandbox.close())
            await asyncio.sleep(0)  # it has begun killing the worker
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
            assert not Path(directory).exists()
            assert not Path(f"{directory}{OWNER_SUFFIX}").exists()
            assert not sandbox.alive
    finally:
        await pool.close()
