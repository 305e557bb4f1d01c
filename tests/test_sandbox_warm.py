"""Warm program runners (``SandboxPool.run_program``): one sandbox worker runs many programs,
each in a fresh child, and nothing of one program is left for the next."""

from __future__ import annotations

import pytest

from mulligan.sandbox import SandboxLimits, SandboxPool

LEAVE_TRACES = """
import os
open("planted.py", "w").write("x = 1")           # the scratch directory (cwd, on sys.path)
os.makedirs("sub/dir", exist_ok=True)
open("/tmp/planted", "w").write("x")
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    open("/dev/shm/planted", "w").write("x")
print("planted", sorted(os.listdir(".")))
"""

LOOK = """
import os
found = sorted(os.listdir("."))
found += [p for p in ("/tmp/planted", "/dev/shm/planted") if os.path.exists(p)]
try:
    import planted
    found.append("imported planted")
except ImportError:
    pass
print("FOUND", found)
"""

LEAVE_A_PROCESS = """
import os, time
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
print("left a child behind")
"""


@pytest.fixture
async def pool() -> object:
    pool = SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=5.0), runners=2)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_warm_runner_leaves_nothing_for_the_next_program(pool: SandboxPool) -> None:
    first = await pool.run_program(LEAVE_TRACES, timeout_s=10)
    assert first.ok and "planted.py" in first.output, first.output
    second = await pool.run_program(LOOK, timeout_s=10)
    assert second.ok and "FOUND []" in second.output, second.output
    # The second program ran on the first one's worker: a warm start, not a new sandbox.
    assert pool.programs_run == 2 and pool.programs_warm == 1


async def test_a_runner_whose_program_left_a_process_is_retired(pool: SandboxPool) -> None:
    await pool.run_program("print('warm up')", timeout_s=10)
    assert pool.programs_warm == 0
    left = await pool.run_program(LEAVE_A_PROCESS, timeout_s=10)
    assert "left a child behind" in left.output
    assert pool.programs_warm == 1  # it ran warm, but came back unclean: retired
    after = await pool.run_program(LOOK, timeout_s=10)
    assert after.ok and pool.programs_warm == 1  # a fresh sandbox, not the retired runner


async def test_failures_and_timeouts_keep_their_verdicts_on_a_warm_runner(
    pool: SandboxPool,
) -> None:
    verdicts = []
    for code in ("assert 1 == 2", "import sys; sys.exit(3)", "print('ok')", "while True: pass"):
        result = await pool.run_program(code, timeout_s=1.5)
        verdicts.append((result.ok, result.timed_out))
    assert verdicts == [(False, False), (False, False), (True, False), (False, True)]
    assert (await pool.run_program("print('after')", timeout_s=10)).ok
