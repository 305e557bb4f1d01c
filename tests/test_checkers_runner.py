"""A CodeRunner for the checker tests, and tests of it.

``code_runner()`` yields the project's sandbox (``mulligan.sandbox.SandboxPool``), or, with
``MULLIGAN_TEST_RUNNER=subprocess``, a small subprocess runner defined here: each program runs
in a fresh ``python -I`` process in a temporary directory, with no stdin and a wall-time limit.
The other checker test modules import it from here (pytest puts this directory on
``sys.path``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mulligan.tasks import CodeRunner, ProgramResult


class SubprocessRunner:
    """Runs each program in a fresh isolated Python process (tests only)."""

    def __init__(self, max_output_chars: int = 20_000) -> None:
        self.max_output_chars = max_output_chars
        self.programs_run = 0

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        self.programs_run += 1
        with tempfile.TemporaryDirectory(prefix="mulligan-test-") as scratch:
            path = Path(scratch) / "program.py"
            path.write_text(code, encoding="utf-8")
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                str(path),
                cwd=scratch,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "")},
            )
            try:
                output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
            except TimeoutError:
                process.kill()
                await process.wait()
                return ProgramResult(ok=False, timed_out=True, error="timed out")
        text = output.decode("utf-8", errors="replace")[-(output_limit or self.max_output_chars) :]
        ok = process.returncode == 0
        return ProgramResult(
            ok=ok, output=text, error=None if ok else f"exit status {process.returncode}"
        )


@asynccontextmanager
async def code_runner() -> AsyncIterator[CodeRunner]:
    """The project's sandbox pool; :class:`SubprocessRunner` when ``MULLIGAN_TEST_RUNNER`` is
    ``subprocess`` (a cross-check that the checkers do not depend on the sandbox's details)."""
    if os.environ.get("MULLIGAN_TEST_RUNNER") == "subprocess":
        yield SubprocessRunner()
        return
    from mulligan.sandbox import SandboxPool

    async with SandboxPool(size=4) as pool:
        yield pool


async def test_runner_runs_a_program() -> None:
    async with code_runner() as runner:
        result = await runner.run_program("print(6 * 7)", timeout_s=10)
    assert result.ok
    assert "42" in result.output


async def test_runner_reports_failure_and_timeout() -> None:
    async with code_runner() as runner:
        failed = await runner.run_program("raise SystemExit(3)", timeout_s=10)
        slow = await runner.run_program("while True: pass", timeout_s=0.5)
    assert not failed.ok
    assert not slow.ok and slow.timed_out


@pytest.mark.parametrize("source", ["import os; print(os.getcwd())"])
async def test_runner_works_in_a_scratch_directory(source: str) -> None:
    async with code_runner() as runner:
        result = await runner.run_program(source, timeout_s=10)
    assert result.ok
    assert str(Path.cwd()) not in result.output
