"""Worker processes that run checks off the event loop, each call under a hard time limit.

Judging model text is pure computation, but an adversarial answer can make it slow (a huge
power, a regex that backtracks, sympy simplifying a tower of exponents). Run in the event loop,
one such answer would stall every concurrent episode. :class:`WorkerPool` runs each call in a
separate process instead: the loop only awaits, and a call that overruns its limit has its
process killed and replaced, so the next call starts on a fresh worker.

Each worker is a one-process executor handed to one call at a time (never two), so killing it
on a timeout cannot take an unrelated call down with it; the time limit counts from the moment
the call has a ready worker, so waiting behind other checks never counts against an answer.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

CHECK_WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Worker processes for checks (one holding sympy for ``math_equiv`` takes about 100 MB)."""

WORKER_START_TIMEOUT_S = 120.0
"""Limit for starting a worker (spawning Python and importing mulligan), not counted in a call's
limit; generous because a loaded host can take seconds."""


class CallTimedOut(Exception):
    """A call did not finish within its limit; its worker was killed."""


class WorkerDied(Exception):
    """A worker process exited during a call (killed, crashed, out of memory)."""


def _ready() -> bool:
    return True


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start processes without re-running the parent's ``__main__`` in them.

    ``spawn`` imports the parent's main script in the child so that its functions unpickle; a
    script that calls a checker at top level (no ``if __name__ == "__main__":``) would then run
    again in the worker and fail. Workers run only mulligan's functions, so the main script is
    hidden from the child while it starts (the executor starts its process during the submit
    that this wraps).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _kill(executor: ProcessPoolExecutor) -> None:
    # The executor has no public way to stop a running call; kill its process directly.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


class WorkerPool:
    """Up to ``max_workers`` worker processes shared by every event loop of this process."""

    def __init__(self, max_workers: int = CHECK_WORKERS) -> None:
        self.max_workers = max_workers
        self._idle: list[ProcessPoolExecutor] = []
        self._lock = threading.Lock()
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._slots = weakref.WeakKeyDictionary()
        self.calls_timed_out = 0
        self.workers_started = 0

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            if loop not in self._slots:
                self._slots[loop] = asyncio.Semaphore(self.max_workers)
            return self._slots[loop]

    async def _take(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        # spawn, not fork: the evaluating process has threads and an event loop.
        executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            loop = asyncio.get_running_loop()
            with self._lock, _main_not_rerun():
                started = loop.run_in_executor(executor, _ready)
            await asyncio.wait_for(started, WORKER_START_TIMEOUT_S)
        except BaseException:
            _kill(executor)
            raise
        self.workers_started += 1
        return executor

    def _give_back(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            self._idle.append(executor)

    async def _call_once(self, timeout_s: float, function: Callable[..., T], *args: Any) -> T:
        async with self._semaphore():
            executor = await self._take()
            loop = asyncio.get_running_loop()
            try:
                result = await asyncio.wait_for(
                    loop.run_in_executor(executor, function, *args), timeout_s
                )
            except TimeoutError:
                _kill(executor)
                self.calls_timed_out += 1
                raise CallTimedOut(f"did not finish within {timeout_s:g} s") from None
            except BrokenProcessPool:
                _kill(executor)
                raise WorkerDied("the worker process died") from None
            except Exception:
                self._give_back(executor)  # the function's own error; the worker is fine
                raise
            except BaseException:
                _kill(executor)  # cancelled: the call may still be running there
                raise
            self._give_back(executor)
            return result

    async def call(self, timeout_s: float, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; ``function``, the arguments and the result
        must pickle. Raises :class:`CallTimedOut` after ``timeout_s`` seconds (the worker is
        killed), :class:`WorkerDied` if the worker dies twice in a row, or what ``function``
        raised."""
        try:
            return await self._call_once(timeout_s, function, *args)
        except WorkerDied:
            # An idle worker can die unnoticed (the OOM killer); one retry on a fresh one.
            return await self._call_once(timeout_s, function, *args)

    def shutdown(self) -> None:
        """Stop every idle worker (busy ones are stopped when their call ends or times out)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for executor in idle:
            _kill(executor)


_POOL = WorkerPool()


def check_workers() -> WorkerPool:
    """The process-wide pool the checkers share."""
    return _POOL


atexit.register(_POOL.shutdown)
