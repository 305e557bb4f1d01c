"""Worker processes that run checks off the event loop, each call under a hard time limit.

Judging model text is pure computation, but an adversarial answer can make it slow (a huge
power, a regex that backtracks, sympy simplifying a tower of exponents). Run in the event loop,
one such answer would stall every concurrent episode. :class:`WorkerPool` runs each call in a
separate process instead: the loop only awaits, and a call that overruns its limit has its
process killed and replaced, so the next call starts on a fresh worker.

Each worker is one long-lived process (``spawn``ed, so it shares no state with the evaluating
process) serving one call at a time over a pipe: the call goes down the pipe pickled, the loop
waits for the reply with ``add_reader`` on the pipe and a timer, and reads it when it is there.
No thread and no ``concurrent.futures`` machinery sits between the loop and the worker (a
``ProcessPoolExecutor`` per worker cost a queue-feeder thread, a management thread and two
future hand-overs per call: most of a text check's CPU). A worker is handed to one call at a
time (never two), so killing it on a timeout cannot take an unrelated call down with it; the
time limit counts from the moment the call has a ready worker, so waiting behind other checks
never counts against an answer.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

CHECK_WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Worker processes for checks (one holding sympy for ``math_equiv`` takes about 100 MB)."""

WORKER_START_TIMEOUT_S = 120.0
"""Limit for starting a worker (spawning Python and importing mulligan), not counted in a call's
limit; generous because a loaded host can take seconds."""

_READY = b"ready"


class CallTimedOut(Exception):
    """A call did not finish within its limit; its worker was killed."""


class WorkerDied(Exception):
    """A worker process exited during a call (killed, crashed, out of memory)."""


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start processes without re-running the parent's ``__main__`` in them.

    ``spawn`` imports the parent's main script in the child so that its functions unpickle; a
    script that calls a checker at top level (no ``if __name__ == "__main__":``) would then run
    again in the worker and fail. Workers run only mulligan's functions, so the main script is
    hidden from the child while it starts (``Process.start`` records what the child imports).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _serve(conn: Connection) -> None:
    """The worker's loop: read ``(function, args)``, reply ``(True, result)`` or ``(False,
    exception)``; ends when the parent closes its end of the pipe (or dies)."""
    conn.send_bytes(_READY)
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            function, args = pickle.loads(request)
            reply: tuple[bool, Any] = (True, function(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            payload = pickle.dumps(reply)
        except Exception as exc:  # a result or an exception that does not pickle
            payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        conn.send_bytes(payload)


def _settle(future: asyncio.Future[bool], readable: bool) -> None:
    if not future.done():
        future.set_result(readable)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self) -> None:
        # spawn, not fork: the evaluating process has threads and an event loop.
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        with _main_not_rerun():
            self.process.start()
        child.close()

    async def wait_readable(self, timeout_s: float) -> bool:
        """Whether the pipe has something to read (or was closed) within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, _settle, future, True)
        timer = loop.call_later(timeout_s, _settle, future, False)
        try:
            return await future
        finally:
            timer.cancel()
            loop.remove_reader(fd)

    async def started(self, timeout_s: float) -> None:
        if not await self.wait_readable(timeout_s):
            raise TimeoutError(f"a check worker did not start within {timeout_s:g} s")
        if self.conn.recv_bytes() != _READY:
            raise WorkerDied("a check worker sent a wrong greeting")

    async def call(self, timeout_s: float, request: bytes) -> tuple[bool, Any]:
        """Send one pickled call and await its reply; raises :class:`CallTimedOut` or
        :class:`WorkerDied` (the caller then kills the worker)."""
        try:
            # A worker between calls is blocked reading, so this write never waits long (a
            # request beyond the pipe's buffer is read as it is written).
            self.conn.send_bytes(request)
        except OSError:
            raise WorkerDied("the worker process died") from None
        if not await self.wait_readable(timeout_s):
            raise CallTimedOut(f"did not finish within {timeout_s:g} s")
        try:
            reply: tuple[bool, Any] = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            raise WorkerDied("the worker process died") from None
        return reply

    def kill(self) -> None:
        # Killed, not asked: a call may be running. multiprocessing reaps it (on the next
        # process start, or at exit); the closed pipe ends a worker that survived the signal.
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


class WorkerPool:
    """Up to ``max_workers`` worker processes shared by every event loop of this process."""

    def __init__(self, max_workers: int = CHECK_WORKERS) -> None:
        self.max_workers = max_workers
        self._idle: list[_Worker] = []
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

    async def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            worker = _Worker()
        try:
            await worker.started(WORKER_START_TIMEOUT_S)
        except BaseException:
            worker.kill()
            raise
        self.workers_started += 1
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    async def _call_once(self, timeout_s: float, request: bytes) -> Any:
        async with self._semaphore():
            worker = await self._take()
            try:
                ok, value = await worker.call(timeout_s, request)
            except CallTimedOut:
                worker.kill()
                self.calls_timed_out += 1
                raise
            except BaseException:
                worker.kill()  # died, or cancelled while the call may still be running there
                raise
            self._give_back(worker)
            if not ok:
                raise value  # the function's own error; the worker is fine
            return value

    async def call(self, timeout_s: float, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; ``function``, the arguments and the result
        must pickle. Raises :class:`CallTimedOut` after ``timeout_s`` seconds (the worker is
        killed), :class:`WorkerDied` if the worker dies twice in a row, or what ``function``
        raised."""
        request = pickle.dumps((function, args))
        try:
            result: T = await self._call_once(timeout_s, request)
        except WorkerDied:
            # An idle worker can die unnoticed (the OOM killer); one retry on a fresh one.
            result = await self._call_once(timeout_s, request)
        return result

    def shutdown(self) -> None:
        """Stop every idle worker (busy ones are stopped when their call ends or times out)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_POOL = WorkerPool()


def check_workers() -> WorkerPool:
    """The process-wide pool the checkers share."""
    return _POOL


atexit.register(_POOL.shutdown)
