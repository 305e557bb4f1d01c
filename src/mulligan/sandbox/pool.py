"""``SandboxPool``: pre-started sandbox workers, handed out per episode and per program run."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from types import TracebackType
from typing import Any

from mulligan.sandbox.isolation import (
    IsolationMode,
    IsolationRequest,
    detect_isolation,
    remove_abandoned_scratch,
)
from mulligan.sandbox.limits import SandboxError, SandboxLimits
from mulligan.sandbox.repl import Sandbox
from mulligan.tasks.base import ProgramResult

logger = logging.getLogger(__name__)


# A warm program runner retires after this many programs (its own CPU time counts against the
# sandbox's CPU limit, a little per program).
RUNNER_MAX_PROGRAMS = 200


class SandboxPool:
    """Keeps ``size`` sandboxes started so an episode gets one in milliseconds.

    ``async with pool.session() as sandbox:`` takes a ready sandbox (or starts one if none is
    ready), closes it afterwards, and refills the pool in the background. ``run_program`` runs a
    whole program (it satisfies ``mulligan.tasks.base.CodeRunner``) on a *warm program runner*:
    a sandbox worker that runs only programs, each in a fresh child process of its own (the
    child's isolation is that of any program: see ``sandbox/_worker.py``), and that is kept for
    the next program only when it comes back clean (nothing the program started still running,
    its scratch directory and private ``/tmp`` and ``/dev/shm`` emptied). At most ``runners``
    programs run at once (others wait their turn, without their time limit running: checked
    programs are CPU-bound, so more at once would not finish sooner), so at most ``runners``
    runners exist and each is reused; a runner retires after ``RUNNER_MAX_PROGRAMS`` programs.
    So a code check costs a process start inside the box, not a new box. A pool belongs to one
    event loop.
    """

    def __init__(
        self,
        size: int = 2,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen model, safe to share
        *,
        isolation: IsolationRequest = "auto",
        hide_paths: Sequence[str] = (),
        allow_weak: bool = False,
        runners: int = 8,
    ) -> None:
        """``size``: sandboxes kept ready. ``limits``: applied to every sandbox.
        ``isolation``: "auto", "bwrap", "rlimits" or a mode's name (see ``detect_isolation``).
        ``hide_paths``: host paths made invisible inside bubblewrap (e.g. run directories
        holding reference answers). ``allow_weak``: the explicit opt-in to a mode weaker than
        bubblewrap where it does not work (warned of loudly); without it, ``start`` raises.
        ``runners``: programs run at once, each on a warm runner (0: no limit, and every program
        gets a fresh sandbox, as before warm runners)."""
        if size < 0 or runners < 0:
            raise ValueError("size and runners must be >= 0")
        self.size = size
        self.runners = runners
        self._idle_runners: collections.deque[Sandbox] = collections.deque()
        self._program_slots: asyncio.Semaphore | None = None  # made in the pool's loop
        self.programs_run = 0
        self.programs_warm = 0  # run on a runner that had run a program before
        self.limits = limits
        self._request: IsolationRequest = isolation
        self._allow_weak = allow_weak
        self._hide_paths = tuple(hide_paths)
        self._mode: IsolationMode | None = None
        self._ready: collections.deque[Sandbox] = collections.deque()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._swept = False  # abandoned scratch directories removed (at the first start)

    @property
    def isolation(self) -> str:
        """The isolation mode in use ('bwrap', 'rlimits-only' or 'rlimits-only-as-root').

        Detected on first use (blocking, ~0.1 s, once per process); ``start()`` detects it
        without blocking the event loop.
        """
        return self._detect().name

    @property
    def isolation_notes(self) -> tuple[str, ...]:
        """What the isolation mode does and does not protect against (for run manifests)."""
        return self._detect().notes

    @property
    def isolation_weak(self) -> bool:
        """True when the mode in use is weaker than the README promises (explicitly allowed)."""
        return self._detect().weak

    def _detect(self) -> IsolationMode:
        if self._mode is None:
            self._mode = detect_isolation(self._request, allow_weak=self._allow_weak)
        return self._mode

    async def _get_mode(self) -> IsolationMode:
        if self._mode is None:
            self._mode = await asyncio.to_thread(self._detect)
        return self._mode

    async def start(self) -> None:
        """Detects the isolation mode, removes the scratch directories that killed processes
        left behind (once per pool, ``sandbox/scratch.py``), and starts ``size`` workers
        concurrently."""
        if self._closed:
            raise SandboxError("this pool is closed")
        await self._get_mode()
        if not self._swept:
            self._swept = True
            await asyncio.to_thread(remove_abandoned_scratch)
        missing = self.size - len(self._ready) - self._starting
        if missing <= 0:
            return
        results = await asyncio.gather(
            *(self._new_sandbox() for _ in range(missing)), return_exceptions=True
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        for result in results:
            if isinstance(result, Sandbox):
                self._ready.append(result)
        if errors:
            raise errors[0]

    async def _new_sandbox(self) -> Sandbox:
        mode = await self._get_mode()
        sandbox = Sandbox(self.limits, mode, hide_paths=self._hide_paths)
        await sandbox.start()
        if self._closed:
            await sandbox.close()
            raise SandboxError("this pool is closed")
        return sandbox

    async def _acquire(self) -> Sandbox:
        if self._closed:
            raise SandboxError("this pool is closed")
        sandbox: Sandbox | None = None
        while self._ready:
            candidate = self._ready.popleft()
            if candidate.alive:
                sandbox = candidate
                break
            self._in_background(candidate.close())  # its worker died while idle
        if sandbox is None:
            sandbox = await self._new_sandbox()
        self._top_up()
        return sandbox

    def _top_up(self) -> None:
        """Starts workers in the background until ``size`` are ready or starting."""
        missing = self.size - len(self._ready) - self._starting
        for _ in range(max(missing, 0)):
            self._starting += 1
            self._in_background(self._add_one())

    async def _add_one(self) -> None:
        try:
            sandbox = await self._new_sandbox()
        except Exception as exc:
            logger.warning("could not pre-start a sandbox worker: %s", exc)
            return
        finally:
            self._starting -= 1
        if self._closed:
            await sandbox.close()
        else:
            self._ready.append(sandbox)

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Sandbox]:
        """``async with pool.session() as sandbox``: a live REPL for one episode."""
        sandbox = await self._acquire()
        try:
            yield sandbox
        finally:
            # Shielded: a cancelled episode must still kill its worker.
            await asyncio.shield(sandbox.close())

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        """Runs ``code`` as a whole program in a fresh isolated process (same limits).

        ``ok`` is True when it exits with status 0 (ends normally or calls ``sys.exit(0)``);
        ``output`` holds what it printed and its traceback; ``timed_out`` after ``timeout_s``.
        """
        if self.runners == 0:
            return await self._run_program(code, timeout_s, output_limit)
        if self._program_slots is None:
            self._program_slots = asyncio.Semaphore(self.runners)
        async with self._program_slots:
            return await self._run_program(code, timeout_s, output_limit)

    async def _run_program(
        self, code: str, timeout_s: float, output_limit: int | None
    ) -> ProgramResult:
        sandbox = self._idle_runner() or await self._acquire()
        keep = False
        try:
            self.programs_warm += sandbox.runs > 0
            cell, exit_code, clean = await sandbox.run_program_warm(code, timeout_s, output_limit)
            self.programs_run += 1
            keep = (
                clean
                and sandbox.alive
                and sandbox.runs < RUNNER_MAX_PROGRAMS
                and not self._closed
                and len(self._idle_runners) < self.runners
            )
        finally:
            if keep:
                self._idle_runners.append(sandbox)
            else:
                # Shielded: a cancelled check must still kill its worker.
                await asyncio.shield(sandbox.close())
        return ProgramResult(
            ok=exit_code == 0 and cell.error is None,
            output=cell.output,
            timed_out=cell.timed_out,
            error=cell.error,
        )

    def _idle_runner(self) -> Sandbox | None:
        """A warm program runner whose worker is still alive, if one is idle."""
        while self._idle_runners:
            runner = self._idle_runners.pop()  # the most recently used: its pages are warm
            if runner.alive:
                return runner
            self._in_background(runner.close())
        return None

    async def close(self) -> None:
        """Closes ready workers and stops refilling (sessions in use close on exit)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ready = [*self._ready, *self._idle_runners]
        self._ready.clear()
        self._idle_runners.clear()
        await asyncio.gather(*(sandbox.close() for sandbox in ready), return_exceptions=True)

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
