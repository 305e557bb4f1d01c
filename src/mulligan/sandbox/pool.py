"""``SandboxPool``: pre-started sandbox workers, handed out per episode and per program run."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from types import TracebackType
from typing import Any

from mulligan.sandbox.isolation import IsolationMode, IsolationRequest, detect_isolation
from mulligan.sandbox.limits import SandboxError, SandboxLimits
from mulligan.sandbox.repl import Sandbox
from mulligan.tasks.base import ProgramResult

logger = logging.getLogger(__name__)


class SandboxPool:
    """Keeps ``size`` sandboxes started so an episode gets one in milliseconds.

    ``async with pool.session() as sandbox:`` takes a ready sandbox (or starts one if none is
    ready), closes it afterwards, and refills the pool in the background. ``run_program`` runs a
    whole program in a fresh sandbox (it satisfies ``mulligan.tasks.base.CodeRunner``). A pool
    belongs to one event loop.
    """

    def __init__(
        self,
        size: int = 2,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen model, safe to share
        *,
        isolation: IsolationRequest = "auto",
        hide_paths: Sequence[str] = (),
        allow_weak: bool = False,
    ) -> None:
        """``size``: sandboxes kept ready. ``limits``: applied to every sandbox.
        ``isolation``: "auto", "bwrap", "rlimits" or a mode's name (see ``detect_isolation``).
        ``hide_paths``: host paths made invisible inside bubblewrap (e.g. run directories
        holding reference answers). ``allow_weak``: the explicit opt-in to a mode weaker than
        bubblewrap where it does not work (warned of loudly); without it, ``start`` raises."""
        if size < 0:
            raise ValueError("size must be >= 0")
        self.size = size
        self.limits = limits
        self._request: IsolationRequest = isolation
        self._allow_weak = allow_weak
        self._hide_paths = tuple(hide_paths)
        self._mode: IsolationMode | None = None
        self._ready: collections.deque[Sandbox] = collections.deque()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

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
        """Detects the isolation mode and starts ``size`` workers concurrently."""
        if self._closed:
            raise SandboxError("this pool is closed")
        await self._get_mode()
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
        sandbox = await self._acquire()
        try:
            cell, exit_code = await sandbox.run_program(code, timeout_s, output_limit)
        finally:
            await asyncio.shield(sandbox.close())
        return ProgramResult(
            ok=exit_code == 0 and cell.error is None,
            output=cell.output,
            timed_out=cell.timed_out,
            error=cell.error,
        )

    async def close(self) -> None:
        """Closes ready workers and stops refilling (sessions in use close on exit)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ready = list(self._ready)
        self._ready.clear()
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
