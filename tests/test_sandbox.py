"""The sandbox: REPL semantics, limits, isolation, cleanup, the pool and the program runner.

Every test runs real worker processes under the isolation this host offers (bubblewrap when
installed). Tests that need a protection the detected mode does not give are skipped with the
reason, never run unprotected (a fork bomb as root without a uid switch would hurt the host).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mulligan.sandbox import (
    CellResult,
    Sandbox,
    SandboxLimits,
    SandboxPool,
    detect_isolation,
)
from mulligan.tasks.base import CodeRunner

LIMITS = SandboxLimits(cell_timeout_s=2.0)
MODE = detect_isolation("auto")
REPO = Path(__file__).resolve().parents[1]
# Protections that depend on the mode (see mulligan.sandbox.isolation).
CONFINED_FS = MODE.use_bwrap or MODE.drop_uid
PROCESS_LIMITED = MODE.drop_uid or os.geteuid() != 0

needs_confined_fs = pytest.mark.skipif(
    not CONFINED_FS, reason=f"isolation {MODE.name} cannot keep writes inside scratch"
)
needs_process_limit = pytest.mark.skipif(
    not PROCESS_LIMITED, reason=f"isolation {MODE.name} runs as root: RLIMIT_NPROC not enforced"
)


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    sandboxes = SandboxPool(size=1, limits=LIMITS)
    await sandboxes.start()
    try:
        yield sandboxes
    finally:
        await sandboxes.close()


@pytest.fixture
async def sandbox(pool: SandboxPool) -> AsyncIterator[Sandbox]:
    async with pool.session() as session:
        yield session


def _live_pids_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker`` (zombies have none, so don't count)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(name))
    return found


async def _wait_gone(marker: str, within_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := _live_pids_with(marker)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


# ----------------------------------------------------------------------------------------------
# REPL semantics
# ----------------------------------------------------------------------------------------------
async def test_state_is_kept_and_out_counter_counts_cells(sandbox: Sandbox) -> None:
    first = await sandbox.execute("x = 1")
    assert first == CellResult(output="", error=None, duration_s=first.duration_s)
    second = await sandbox.execute("x + 1")
    assert second.output == "Out[2]: 2"
    assert (await sandbox.execute("   \n")).output == ""  # blank cells are not counted
    printed = await sandbox.execute("print('a')\nprint('b')\nx * 10")
    assert printed.output == "a\nb\nOut[3]: 10"
    assert (await sandbox.execute("x;")).output == ""  # a trailing ';' hides the value
    assert (await sandbox.execute("None")).output == ""


async def test_stdout_stderr_and_subprocess_output_are_interleaved(sandbox: Sandbox) -> None:
    result = await sandbox.execute(
        "import sys, os\nprint('one')\nprint('two', file=sys.stderr)\n"
        "os.system('echo three')\nsys.stdout.flush()\nprint('four')"
    )
    assert result.output == "one\ntwo\nthree\nfour"
    assert result.error is None


async def test_exception_gives_traceback_without_worker_frames(sandbox: Sandbox) -> None:
    await sandbox.execute("def f(n):\n    return 1 / n")
    result = await sandbox.execute("print('before')\nf(0)")
    assert result.error == "ZeroDivisionError"
    assert result.output.startswith("before\nTraceback (most recent call last):")
    assert 'File "<cell 2>", line 2' in result.output
    assert "return 1 / n" in result.output  # source of a function defined in an earlier cell
    assert "mulligan-sandbox-worker" not in result.output
    assert result.output.endswith("ZeroDivisionError: division by zero")
    syntax = await sandbox.execute("def broken(:\n    pass")
    assert syntax.error == "SyntaxError"
    assert "Traceback" not in syntax.output and "SyntaxError" in syntax.output


async def test_input_fails_at_once(sandbox: Sandbox) -> None:
    result = await sandbox.execute("name = input('name? ')")
    assert result.error == "EOFError"
    assert "no stdin" in result.output
    assert not result.timed_out
    assert (await sandbox.execute("import sys; sys.stdin.read()")).output == "Out[2]: ''"


async def test_sys_exit_does_not_end_the_session(sandbox: Sandbox) -> None:
    await sandbox.execute("kept = 'yes'")
    result = await sandbox.execute("import sys; sys.exit(3)")
    assert result.error == "SystemExit" and "SystemExit: 3" in result.output
    assert (await sandbox.execute("kept")).output == "Out[3]: 'yes'"


async def test_top_level_await(sandbox: Sandbox) -> None:
    result = await sandbox.execute("import asyncio\nawait asyncio.sleep(0)\n21 * 2")
    assert result.output == "Out[1]: 42"


# ----------------------------------------------------------------------------------------------
# Limits
# ----------------------------------------------------------------------------------------------
async def test_infinite_loop_is_interrupted_and_state_kept(sandbox: Sandbox) -> None:
    await sandbox.execute("x = 41")
    result = await sandbox.execute("while True:\n    pass")
    assert result.error == "Timeout" and result.timed_out
    assert not result.restarted
    assert "KeyboardInterrupt" in result.output and "did not finish within 2 s" in result.output
    assert "Processes started" not in result.output  # it started none
    after = await sandbox.execute("x + 1")
    assert after.output == "Out[3]: 42"


async def test_loop_that_swallows_interrupts_is_killed_and_restarted(sandbox: Sandbox) -> None:
    await sandbox.execute("x = 41\nopen('kept.txt', 'w').write('file')")
    stubborn = "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass"
    result = await sandbox.execute(stubborn, timeout_s=1.0)
    assert result.error == "Timeout" and result.timed_out and result.restarted
    assert "lost" in result.output and "restarted" in result.output
    gone = await sandbox.execute("x")
    assert gone.error == "NameError" and not gone.restarted
    kept = await sandbox.execute("open('kept.txt').read()")
    assert kept.output == "Out[4]: 'file'"


async def test_worker_death_is_reported_and_worker_restarted(sandbox: Sandbox) -> None:
    await sandbox.execute("x = 1")
    result = await sandbox.execute("import os; os._exit(7)")
    assert result.error == "WorkerDied" and result.restarted
    assert "status 7" in result.output
    after = await sandbox.execute("1 + 1")
    assert after.output == "Out[3]: 2" and after.error is None


async def test_cancelled_cell_restarts_the_worker(sandbox: Sandbox) -> None:
    running = asyncio.create_task(sandbox.execute("import time\ntime.sleep(30)", timeout_s=30))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    after = await sandbox.execute("1 + 1")
    assert after.restarted and "cancelled" in after.output
    assert after.output.endswith("Out[2]: 2")


async def test_close_during_a_cell_ends_it(pool: SandboxPool) -> None:
    async with pool.session() as sandbox:
        running = asyncio.create_task(sandbox.execute("while True:\n    pass", timeout_s=30))
        await asyncio.sleep(0.3)
        await sandbox.close()
        result = await running
        assert result.error == "WorkerDied" and "closed" in result.output
        assert not sandbox.alive


async def test_memory_bomb_raises_memory_error(sandbox: Sandbox) -> None:
    result = await sandbox.execute("x = bytearray(10 * 1024**3)")
    assert result.error == "MemoryError"
    assert "MemoryError" in result.output and "memory limit" in result.output
    after = await sandbox.execute("y = bytearray(10 * 1024**2); len(y)")
    assert after.output == "Out[2]: 10485760"


async def test_huge_output_is_truncated_with_a_note(sandbox: Sandbox) -> None:
    result = await sandbox.execute("print('x' * 100_000_000)\nprint('end')")
    assert result.truncated and result.error is None
    assert len(result.output) < LIMITS.output_bytes + 500
    assert "output truncated" in result.output and "100,000,001" not in result.output
    assert result.output.endswith("end")  # the end of the output is kept too
    small = await sandbox.execute("print('ok')")
    assert small.output == "ok" and not small.truncated


async def test_runaway_printing_is_stopped(sandbox: Sandbox) -> None:
    result = await sandbox.execute("while True:\n    print('y' * 1_000_000)")
    assert result.error == "OutputLimit" and result.truncated and not result.timed_out


@needs_process_limit
async def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    await sandbox.execute("x = 5")
    result = await sandbox.execute("import os\nwhile True:\n    os.fork()")
    assert result.error in ("BlockingIOError", "Timeout")
    stubborn = await sandbox.execute(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except BaseException:\n        pass"
    )
    assert stubborn.error == "Timeout"  # interrupted, or killed if it swallowed every interrupt
    after = await sandbox.execute("import subprocess\nsubprocess.run(['true']).returncode")
    assert after.output.endswith("Out[4]: 0") and after.error is None
    state = await sandbox.execute("x")
    if stubborn.restarted or after.restarted:
        assert state.error == "NameError"
    else:
        assert state.output == "Out[5]: 5"


@needs_process_limit
async def test_process_limit_counts_threads(sandbox: Sandbox) -> None:
    result = await sandbox.execute(
        "import threading, time\nevent = threading.Event()\n"
        "threads = [threading.Thread(target=event.wait) for _ in range(200)]\n"
        "try:\n    [t.start() for t in threads]\nfinally:\n    event.set()"
    )
    assert result.error == "RuntimeError" and "can't start new thread" in result.output


# ----------------------------------------------------------------------------------------------
# Isolation
# ----------------------------------------------------------------------------------------------
@needs_confined_fs
async def test_writes_outside_scratch_fail(sandbox: Sandbox) -> None:
    name = f"mulligan-sbx-probe-{uuid.uuid4().hex}"
    targets = [Path("/etc") / name, REPO / name, Path.home() / name, Path("/") / name]
    try:
        for target in targets:
            result = await sandbox.execute(f"open({str(target)!r}, 'w').write('x')")
            assert result.error in ("PermissionError", "OSError", "FileNotFoundError"), target
            assert not target.exists()
        appended = await sandbox.execute("open('/etc/passwd', 'a')")
        assert appended.error in ("PermissionError", "OSError")
    finally:
        for target in targets:
            target.unlink(missing_ok=True)
    cwd = await sandbox.execute("import os\nopen('here.txt', 'w').write('ok')\nos.getcwd()")
    assert cwd.output == f"Out[6]: {sandbox.scratch_dir!r}"
    assert sandbox.scratch_dir is not None
    assert (Path(sandbox.scratch_dir) / "here.txt").read_text() == "ok"


@pytest.mark.skipif(not MODE.use_bwrap, reason="a private /tmp needs bubblewrap")
async def test_tmp_is_private(sandbox: Sandbox) -> None:
    name = f"mulligan-sbx-tmp-{uuid.uuid4().hex}"
    result = await sandbox.execute(f"open('/tmp/{name}', 'w').write('x')")
    assert result.error is None
    assert not (Path("/tmp") / name).exists()


async def test_scratch_dir_is_removed_on_close(pool: SandboxPool) -> None:
    async with pool.session() as sandbox:
        await sandbox.execute("open('data.txt', 'w').write('x' * 1000)")
        scratch = sandbox.scratch_dir
        assert scratch is not None and os.path.isdir(scratch)
    assert not os.path.exists(scratch)


async def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    async with await Sandbox.create(LIMITS) as sandbox:
        result = await sandbox.execute("import os; print(os.environ.get('OPENAI_API_KEY'))")
        assert result.output == "None"
        keys = await sandbox.execute("import os; print(sorted(os.environ))")
        assert "PATH" in keys.output and "HOME" in keys.output and "PYTHONHASHSEED" in keys.output
        home = await sandbox.execute("os.environ['HOME'] == os.getcwd()")
        assert home.output == "Out[3]: True"
        if CONFINED_FS:
            peek = await sandbox.execute(
                f"try:\n    print(b'sk-secret' in open('/proc/{os.getpid()}/environ', 'rb').read())"
                "\nexcept OSError as exc:\n    print(type(exc).__name__)"
            )
            assert peek.output in ("FileNotFoundError", "PermissionError", "ProcessLookupError")


async def test_network_is_off(pool: SandboxPool) -> None:
    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(ignore, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with pool.session() as sandbox:
            if not sandbox.network_isolated:
                pytest.skip(f"isolation {sandbox.isolation} cannot turn the network off here")
            result = await sandbox.execute(
                "import socket\nsocket.create_connection(('127.0.0.1', "
                f"{port}), timeout=1).close()\nprint('connected')"
            )
            assert result.error is not None and "connected" not in result.output
    finally:
        server.close()
        await server.wait_closed()


async def test_network_can_be_allowed() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        limits = SandboxLimits(cell_timeout_s=5.0, network=True)
        async with await Sandbox.create(limits) as sandbox:
            assert not sandbox.network_isolated
            result = await sandbox.execute(
                f"import socket\nwith socket.create_connection(('127.0.0.1', {port}), timeout=3)"
                " as s:\n    print(s.recv(5))"
            )
            assert result.output == "b'hello'"
    finally:
        server.close()
        await server.wait_closed()


async def test_close_kills_every_process_it_started(pool: SandboxPool) -> None:
    marker = f"1000.{uuid.uuid4().int % 10**8}"
    async with pool.session() as sandbox:
        code = (
            "import subprocess\n"
            f"child = subprocess.Popen(['sleep', '{marker}'])\n"
            f"grandchild = subprocess.Popen(['sh', '-c', 'sleep {marker}1 & wait'])\n"
        )
        if CONFINED_FS:  # a process in its own session escapes only the weakest mode
            code += f"escaped = subprocess.Popen(['sleep', '{marker}2'], start_new_session=True)\n"
        result = await sandbox.execute(code + "child.pid > 0")
        assert result.output == "Out[1]: True"
        await asyncio.sleep(0.1)
        assert len(_live_pids_with(marker)) >= 3
    assert await _wait_gone(marker) == []


# ----------------------------------------------------------------------------------------------
# Pool and program runner
# ----------------------------------------------------------------------------------------------
async def test_pool_reports_isolation(pool: SandboxPool) -> None:
    assert pool.isolation in ("bwrap", "rlimits-only", "rlimits-only-as-root")
    assert pool.isolation_notes
    async with pool.session() as sandbox:
        assert sandbox.isolation == pool.isolation
        assert sandbox.alive
    assert not sandbox.alive


async def test_concurrent_sessions_are_independent(pool: SandboxPool) -> None:
    async def episode(index: int) -> str:
        async with pool.session() as sandbox:
            await sandbox.execute(f"import time\nvalue = {index}\ntime.sleep(0.2)")
            return (await sandbox.execute("value * 10")).output

    outputs = await asyncio.gather(*(episode(index) for index in range(4)))
    assert outputs == [f"Out[2]: {index * 10}" for index in range(4)]


async def test_pool_close_leaves_no_workers() -> None:
    def our_workers() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            parent = int(stat[stat.rfind(")") + 2 :].split()[1])
            if parent == os.getpid() and b"mulligan-sandbox-worker" in cmdline:
                found.append(int(pid))
        return found

    pool = SandboxPool(size=3, limits=LIMITS)
    await pool.start()
    async with pool.session() as sandbox:  # taking one starts a replacement in the background
        await sandbox.execute("1")
    assert our_workers()  # the ready ones (the helper sees them)
    await pool.close()  # also cancels replacements still starting
    deadline = time.monotonic() + 3
    while our_workers() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert our_workers() == []


async def test_run_program(pool: SandboxPool) -> None:
    assert isinstance(pool, CodeRunner)
    good = await pool.run_program("def add(a, b):\n    return a + b\nprint(add(2, 3))\nadd(1, 1)")
    assert good.ok and good.output == "5" and good.error is None  # no Out[n] for programs
    bad = await pool.run_program("def check():\n    assert 1 + 1 == 3, 'math'\ncheck()")
    assert not bad.ok and bad.error == "AssertionError"
    assert "Traceback" in bad.output and "AssertionError: math" in bad.output
    slow = await pool.run_program("while True:\n    pass", timeout_s=1.0)
    assert not slow.ok and slow.timed_out
    assert (await pool.run_program("import sys; sys.exit(0)")).ok
    assert (await pool.run_program("import os; os._exit(0)")).ok
    died = await pool.run_program("import os; os._exit(3)")
    # Programs run in a child of the worker: its exit status, not a dead worker.
    assert not died.ok and died.error == "SystemExit" and "status 3" in died.output
    assert not (await pool.run_program("import sys; sys.exit(2)")).ok
    main = await pool.run_program("print(__name__)")
    assert main.output == "__main__"


async def test_forced_rlimits_mode_works() -> None:
    """Without bubblewrap the sandbox still runs when weak isolation is explicitly allowed."""
    async with await Sandbox.create(LIMITS, isolation="rlimits", allow_weak=True) as sandbox:
        assert sandbox.isolation.startswith("rlimits-only")
        assert (await sandbox.execute("x = 2\nx ** 10")).output == "Out[1]: 1024"
        env = await sandbox.execute("import os; print(os.environ.get('OPENAI_API_KEY'))")
        assert env.output == "None"
        timeout = await sandbox.execute("while True:\n    pass", timeout_s=1.0)
        assert timeout.error == "Timeout" and (await sandbox.execute("x")).output == "Out[4]: 2"
        marker = f"1000.{uuid.uuid4().int % 10**8}"
        await sandbox.execute(f"import subprocess; p = subprocess.Popen(['sleep', '{marker}'])")
    assert await _wait_gone(marker) == []


async def test_a_programs_limit_is_cpu_time_with_a_wall_clock_backstop(pool: SandboxPool) -> None:
    """Checked programs are limited by CPU time (a loaded machine does not make them time
    out); one that sleeps still ends, at a multiple of its limit in wall time; one that catches
    SIGXCPU is killed at the hard limit a second later."""
    sleeper = await pool.run_program("import time\ntime.sleep(600)", timeout_s=0.5)
    assert sleeper.timed_out and "still running after" in sleeper.output, sleeper.output
    # A busy loop needs (limit + 1) s of CPU before the wall-clock backstop (5x the limit): on
    # a loaded machine 0.5 s may not get there, so a longer limit gets a second chance.
    for limit in (0.5, 3.0):
        stubborn = await pool.run_program(
            "import signal\nsignal.signal(signal.SIGXCPU, lambda *a: None)\nwhile True:\n    pass",
            timeout_s=limit,
        )
        if "of CPU time" in stubborn.output:
            break
    assert stubborn.timed_out and "of CPU time" in stubborn.output, stubborn.output
